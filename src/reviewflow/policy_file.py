"""Policy files: read a complete :class:`~reviewflow.policy.Policy` from TOML, and write one.

A policy file is checked as it is read. Every problem is a :class:`PolicyError` that
names the file, the setting (a dotted path such as ``stages.drafting.due.at``), the
line where it can be found, and what to do. The format is described, key by key, in
``docs/reference/policy-file.md``; the shipped ``default_policy.toml`` is the seed's
plan for 2016 and loads to ``Policy.default(year=2016)``.

The rule for what a file leaves out: a top-level setting or table that is absent keeps
the seed's default for the file's ``year``; a table that is present replaces the
default, except ``[permissions]`` (events not listed keep their default roles),
``[content]`` and ``[scoring]`` (keys not given keep their defaults).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reviewflow._policy_io import write
from reviewflow._policy_io.keys import CONTENT_KEYS as _CONTENT_KEYS  # noqa: F401  # read by tests
from reviewflow._policy_io.keys import MAX_DEPTH, MAX_FILE_BYTES
from reviewflow._policy_io.lines import LineIndex as _LineIndex  # noqa: F401  # read by tests
from reviewflow._policy_io.read import Reader as _Reader
from reviewflow._policy_io.text import parse, read_text
from reviewflow.policy import Policy

__all__ = [
    "DEFAULT_POLICY_FILE",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "load_policy",
    "policy_from_dict",
    "policy_to_data",
    "policy_to_toml",
]

#: The seed's plan for 2016 as an annotated policy file (loads to ``Policy.default(year=2016)``).
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy from a TOML file and check it.

    Raise :class:`PolicyError` for anything wrong with the file: missing, not a regular
    file, over :data:`MAX_FILE_BYTES`, not UTF-8, not TOML (duplicate keys included),
    nested deeper than :data:`MAX_DEPTH`, or a setting that is unknown, of the wrong
    type or inconsistent. The error names the file, the line and the setting.
    """
    source = os.fspath(path)
    text = read_text(source)
    data = parse(text, source)
    return _Reader(source, text).policy(data)


def policy_from_dict(data: Mapping[str, Any], *, source: str | None = None) -> Policy:
    """Build a policy from parsed policy-file data (the shape ``tomllib`` returns) and check it.

    ``source`` names where the data came from in error messages.
    """
    return _Reader(source, None).policy(data)


def policy_to_toml(policy: Policy) -> str:
    """Return ``policy`` as policy-file TOML that :func:`load_policy` reads back as equal.

    Every section is written out in full, so the file does not depend on the seed's
    defaults. (A policy whose permissions omit an event loads back with that event's
    default roles: list every event to keep such a policy exact.)
    """
    return write.policy_to_toml(policy)


def policy_to_data(policy: Policy) -> dict[str, Any]:
    """Return ``policy`` as JSON-safe data in the policy-file shape.

    Date-times and dates become ISO strings; :func:`policy_from_dict` reads the data back
    to an equal policy, so a store can keep a policy as JSON.
    """
    return write.policy_to_data(policy)
