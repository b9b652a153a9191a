"""The errors reviewflow raises: one tree, every class catchable by its parent.

::

    ReviewflowError
    ├── PolicyError (ValueError)          a policy that cannot be used: names the field and the fix
    ├── TransitionRefused                 a step the rules refuse; ``.reason`` is a stable code
    ├── ScoringError (ValueError)         bad counts or scale for a score
    ├── BallotError                       a token used twice, unknown, or from another case
    ├── DeadlineError (ValueError)        a naive datetime, an unknown calendar year, a bad due rule
    ├── InputError (ValueError)           a bad import file, CLI argument or case id
    │   └── DuplicateCaseError            a case id that is already open in the campaign
    ├── UnknownCaseError (KeyError)       no such case in the campaign
    ├── StoreError                        the store could not do what was asked
    │   ├── ConflictError                 a stale version: someone else changed the case first
    │   ├── IdempotencyKeyReused          the same key was replayed with different data
    │   ├── StoreTimeout                  the database did not answer in time; ``.reason`` says which limit
│   ├── ScrubIncomplete               old copies of ballot rows were not removed (the vote is closed)
    │   └── SchemaVersionError            the database needs ``reviewflow db upgrade``
    └── PluginError                       a hook implementation raised; the step stands

Every error carries a message in English that says what was wrong and what to do,
with the Chinese name of the thing where the user works in Chinese. An error's ``.reason``
(where it has one) is a member of :class:`Reason`, the one registry of codes, with its
meaning in English and Chinese and the ``reviewflow`` command's exit code for it.

A code outside the registry is not refused when an error is built (a host's side step may
refuse with its own code, and refusal journals are read back as they were written);
``tests/test_reason_codes.py`` fails when reviewflow's own source raises one.
"""

from __future__ import annotations

from typing import Any

from reviewflow._reasons import REFUSED, USAGE, Reason

__all__ = [
    "REFUSALS",
    "BallotError",
    "ConflictError",
    "DeadlineError",
    "DuplicateCaseError",
    "IdempotencyKeyReused",
    "InputError",
    "PluginError",
    "PolicyError",
    "PolicyMismatch",
    "Reason",
    "ReviewflowError",
    "SchemaVersionError",
    "ScoringError",
    "ScrubIncomplete",
    "StoreError",
    "StoreTimeout",
    "TransitionRefused",
    "UnknownCaseError",
    "exit_code",
    "reason_of",
]


class ReviewflowError(Exception):
    """The root of every error reviewflow raises on purpose."""


class PolicyError(ReviewflowError, ValueError):
    """A policy (built in Python or loaded from a file) that cannot be used.

    ``field`` is the dotted path of the offending setting (``stages.approval.due``),
    ``source`` the file it came from, if any, and ``line`` its line, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        where = []
        if source:
            where.append(source if line is None else f"{source}:{line}")
        if field:
            where.append(field)
        full = f"{': '.join(where)}: {message}" if where else message
        super().__init__(full)
        self.field = field
        self.source = source
        self.line = line


class PolicyMismatch(PolicyError):
    """A campaign opened with another policy than the one sealed on its record.

    ``reason`` is ``policy_differs``; ``fields`` lists the settings that differ (dotted
    paths). Nothing was changed: open the campaign with its sealed policy, or record the
    new one as an amendment (``Campaign.amend_policy``, ``reviewflow policy amend``).
    """

    reason = "policy_differs"

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class TransitionRefused(ReviewflowError):
    """A step the rules refuse; nothing was changed.

    ``reason`` is a stable, machine-readable code (``not_permitted``,
    ``deadline_passed``, ``too_early``, ``content_rule``, ``wrong_stage``,
    ``missing_data``, ``quorum_not_met``, ``self_sign_off``, ...);
    ``findings`` lists every finding when there is more than one
    (the report content rules list them all).
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        case_id: str | None = None,
        event: str | None = None,
        findings: tuple[str, ...] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        prefix = f"{case_id}: {event}: " if case_id and event else ""
        super().__init__(f"{prefix}{message} [{reason}]")
        self.reason = reason
        self.case_id = case_id
        self.event = event
        self.findings = findings
        self.details = details or {}


class ScoringError(ReviewflowError, ValueError):
    """Counts or a scale that cannot produce a score (an unknown option, a negative count,
    no valid ballots)."""


class BallotError(ReviewflowError):
    """A ballot that cannot be cast: a token unknown, already used, or from another case,
    or a vote that is closed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{message} [{reason}]")
        self.reason = reason


class DeadlineError(ReviewflowError, ValueError):
    """A bad time value or due rule: a naive datetime, an unknown anchor, a calendar year
    with no holiday data."""


class InputError(ReviewflowError, ValueError):
    """Bad input from a file or an argument: says where (file, row, column) and what to do.

    ``reason`` is a stable code when the error has one (``bad_identifier``,
    ``invalid_argument``, ``invalid_data``, ``bad_timeout``, ``bad_backoff``), else None;
    the message then ends with it.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"{message} [{reason}]" if reason else message)
        self.reason = reason


class DuplicateCaseError(InputError):
    """A case id that is already open in the campaign."""


class UnknownCaseError(ReviewflowError, KeyError):
    """No case with this id in the campaign."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreError(ReviewflowError):
    """The store could not do what was asked (unreachable, corrupt, wrong schema)."""


class ConflictError(StoreError):
    """Someone else changed the case first: the write was based on a stale version.

    Nothing was written. Reload the case and try again (``fire(..., retries=N)`` does it).
    """

    def __init__(self, case_id: str, expected: int, actual: int | None) -> None:
        super().__init__(
            f"case {case_id!r} changed under you: this write expected version {expected}, "
            f"the store has version {actual}; reload the case and try again"
        )
        self.case_id = case_id
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(StoreError):
    """The same idempotency key was sent again with different data."""


class StoreTimeout(StoreError):
    """The database did not answer within a limit; the message names the server and the limit.

    ``reason`` is one of ``connect_timeout``, ``no_reply`` (a frozen or unreachable
    server), ``statement_timeout``, ``lock_timeout`` and ``idle_in_transaction_timeout``;
    ``url`` is the database (password hidden). The limits are set with
    :class:`reviewflow.store.Timeouts` or the database URL (``docs/how-to/persist.md``).
    """

    def __init__(self, reason: str, message: str, *, url: str = "") -> None:
        super().__init__(f"{message} [{reason}]")
        self.reason = reason
        self.url = url


class ScrubIncomplete(StoreError):
    """The ballot table was not scrubbed: old copies of ballot rows may remain in the
    database's files (the write-ahead log, freed pages), from which the casting order can
    be read. A vote closed before stays closed.

    ``reason`` is ``scrub_incomplete``; ``why`` says what the database answered;
    ``case_id`` and ``result`` are the vote that was closed (its
    :class:`~reviewflow.ballots.CloseResult`) when the scrub came right after closing it.
    Run the scrub again when no other connection to the database is open:
    ``reviewflow ballots scrub`` or :meth:`reviewflow.Campaign.scrub_ballots`.
    """

    def __init__(self, why: str, *, case_id: str | None = None, result: Any = None,
                 reason: str = "scrub_incomplete") -> None:
        closed = "" if case_id is None else f"the vote of case {case_id!r} is closed; "
        super().__init__(
            f"{closed}the scrub of the ballot table was not done ({why}), so old copies of "
            "ballot rows may remain in the database's files; run `reviewflow ballots scrub` "
            "(or Campaign.scrub_ballots()) again when no other connection to the database "
            f"is open [{reason}]")
        self.reason = reason
        self.why = why
        self.case_id = case_id
        self.result = result

    def after_close(self, case_id: str, result: Any) -> ScrubIncomplete:
        """The same failure, said of a vote that was just closed."""
        return ScrubIncomplete(self.why, case_id=case_id, result=result, reason=self.reason)


class SchemaVersionError(StoreError):
    """The database schema is older (or newer) than this reviewflow: run ``reviewflow db upgrade``."""


class PluginError(ReviewflowError):
    """A hook implementation raised (or a plugin cannot be registered). The step it was told
    about stands; the failure is recorded and the delivery retried.

    ``plugin`` names the plugin, ``hook`` the hook; the original exception is ``__cause__``.
    """

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in {hook}: {type(error).__name__}: {error}")
        self.plugin = plugin
        self.hook = hook
        self.error = error


#: The errors that mean "refused" (a rule, or another writer, said no) rather than "bad input".
REFUSALS = (TransitionRefused, BallotError, ConflictError, IdempotencyKeyReused)


def reason_of(error: BaseException) -> Reason | None:
    """The registered :class:`Reason` an error carries, or None (no code, or a host's own)."""
    code = getattr(error, "reason", None)
    if not isinstance(code, str):
        return None
    try:
        return Reason(code)
    except ValueError:
        return None


def exit_code(error: ReviewflowError) -> int:
    """What the ``reviewflow`` command exits with for ``error``: its code's exit code in
    :class:`Reason`; without a registered code, 1 for a refusal (a rule or another writer
    said no) and 2 for anything else (bad input, a file, the database)."""
    reason = reason_of(error)
    if reason is not None and reason.exit_code:
        return reason.exit_code
    return REFUSED if isinstance(error, REFUSALS) else USAGE
