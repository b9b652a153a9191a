"""The checks at the doors: the identifier rule, and the arguments of a command.

The rule for identifiers and names is :mod:`reviewflow._names` (which the model uses, so
it cannot import the model); it is re-exported here for the callers that check a command's
arguments too. :func:`check_command` needs :class:`~reviewflow.model.Actor`.
"""

from __future__ import annotations

from typing import Any

from reviewflow._names import REASON, identifier, lookup, name, optional_identifier, storable
from reviewflow.exceptions import InputError
from reviewflow.model import Actor

__all__ = ["REASON", "check_command", "identifier", "lookup", "name", "optional_identifier",
           "storable"]


def check_command(actor: Any, idempotency_key: Any, retries: Any) -> str | None:
    """Check the arguments of a command (``fire``): an Actor, an idempotency key that is an
    identifier or None, and a whole number of retries from 0 to 100. Return the key (NFC)."""
    if not isinstance(actor, Actor):
        raise InputError(f"actor must be a reviewflow.Actor, got {type(actor).__name__}; "
                         "build one with Actor(id, name, roles={...})", reason="invalid_argument")
    if idempotency_key is not None:
        idempotency_key = identifier(idempotency_key, "idempotency_key")
        if len(idempotency_key) > 200:
            raise InputError("idempotency_key: longer than 200 characters; use a shorter key",
                             reason="invalid_argument")
    if retries and (not isinstance(retries, int) or isinstance(retries, bool)
                    or not 0 <= retries <= 100):
        raise InputError(f"retries must be a whole number from 0 to 100, got {retries!r:.60}",
                         reason="invalid_argument")
    return idempotency_key  # type: ignore[no-any-return]
