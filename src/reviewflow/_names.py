"""The one rule for identifiers and names, applied at every door.

Identifiers (case ids, actor ids, idempotency keys, guidance-group names) and names
(organisations, secretaries, actors) are normalised to Unicode NFC, so that the
composed and decomposed spellings of one text are one id, and refused when they
hold a character that hides or reorders text: a control character (category Cc:
tab, line break, ESC...), a format character (Cf: the zero-width space U+200B, the
joiners U+200C/U+200D, the direction marks and overrides U+200E/U+200F,
U+202A-U+202E, U+2066-U+2069, a byte-order mark U+FEFF...), a line or paragraph
separator (U+2028, U+2029), or half of a surrogate pair. Identifiers may not start
or end with white space either (a database that pads trailing spaces would take
``"s1 "`` for ``"s1"``): the API and the CLI refuse it, the case importers strip
each cell first.

Lookups (:meth:`~reviewflow.Campaign.case`, :meth:`~reviewflow.Campaign.fire`...)
apply the same rule, so a caller passing the decomposed form finds the case, and
one passing an id no case can have is told why.

>>> identifier("cafe\\u0301", "case id") == "caf\\u00e9"
True
>>> try:
...     identifier("s1\\u200b", "case id")
... except InputError as exc:
...     print(exc.reason, str(exc)[:58])
bad_identifier case id 's1\\u200b': character 3 is U+200B ZERO WIDTH SPACE
"""

from __future__ import annotations

import unicodedata
from typing import Any

from reviewflow.exceptions import InputError

__all__ = ["REASON", "identifier", "lookup", "name", "optional_identifier", "storable"]

#: The reason code of every refusal of this module.
REASON = "bad_identifier"

_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "half of a surrogate pair (not a character)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def _describe(ch: str) -> str:
    label = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {label}" if label else "")


def _clean(value: str, what: str) -> str:
    """Refuse a hiding character in ``value``; return it in NFC."""
    if value.isascii() and value.isprintable():  # the usual case: nothing to look at
        return value
    for i, ch in enumerate(value):
        kind = _KINDS.get(unicodedata.category(ch))
        if kind is not None:
            raise InputError(
                f"{what} {value!r}: character {i + 1} is {_describe(ch)}, {kind}; ids and names "
                "may not hold control or format characters (编号和名称不能含控制字符或格式字符): "
                "remove it and try again", reason=REASON)
    return unicodedata.normalize("NFC", value)


def identifier(value: Any, what: str) -> str:
    """Return ``value`` (text) in NFC; InputError when it is not text, holds a control or
    format character, or starts or ends with white space. ``what`` names it in the message
    (``"case id"``, ``"row 3: case id"``)."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__} {value!r:.60}",
                         reason=REASON)
    text = _clean(value, what)
    if text != text.strip():
        at = 1 if text[:1].isspace() else len(text)
        raise InputError(
            f"{what} {text!r}: character {at} is {_describe(text[at - 1])}; ids may not start "
            "or end with white space (编号首尾不能有空格): remove it and try again", reason=REASON)
    return text


def optional_identifier(value: Any, what: str) -> str | None:
    """:func:`identifier` for a value that may be None."""
    return None if value is None else identifier(value, what)


def name(value: str, what: str) -> str:
    """Return a name (text) in NFC; InputError when it holds a control or format character."""
    return _clean(value, what)


def lookup(value: Any, what: str = "case id") -> Any:
    """Return the id to look up: text through :func:`identifier`, anything else as it is
    (the store finds no case for it)."""
    return identifier(value, what) if isinstance(value, str) else value


def storable(text: str) -> str:
    """Return ``text`` with anything that is not a character (half of a surrogate pair)
    written as an escape (``\\ud800``), so that it can be stored as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
