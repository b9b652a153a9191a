"""A policy file's text, and TOML's refusals of it as PolicyErrors naming the line."""

from __future__ import annotations

import re
import sys
import tomllib
from typing import Any

from reviewflow._files import read_capped
from reviewflow._policy_io.keys import MAX_DEPTH, MAX_FILE_BYTES
from reviewflow._policy_io.lines import LONG_DOTTED, LineIndex
from reviewflow.exceptions import PolicyError


def parse(text: str, source: str) -> dict[str, Any]:
    """Return the TOML data of a policy file's ``text``; PolicyError for what tomllib refuses."""
    check_dotted_keys(text, source)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, source, text) from None
    except ValueError as exc:  # int() past Python's digit limit (sys.get_int_max_str_digits)
        raise _number_error(exc, source, text) from None
    except RecursionError:
        line = _deep_line(text)
        raise PolicyError(
            f"tables or arrays are nested too deeply (the limit is {MAX_DEPTH} levels); "
            "a policy file needs only a few",
            field=None if line is None else LineIndex(text).field_at(line),
            source=source, line=line,
        ) from None


def read_text(source: str) -> str:
    raw = read_capped(
        source, MAX_FILE_BYTES, "a .toml policy file",
        too_large="a policy file is a few KiB: check that this is the right file",
        fail=lambda message: PolicyError(message, source=source),
    )
    if raw.startswith(b"\xef\xbb\xbf"):  # editors on Windows often add a UTF-8 BOM
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PolicyError(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 (GBK/GB 18030 files must be converted)",
            source=source, line=line,
        ) from None


def check_dotted_keys(text: str, source: str) -> None:
    """Refuse a dotted key deeper than MAX_DEPTH before parsing: tomllib's time for one
    grows with the square of its length."""
    found = LONG_DOTTED.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise PolicyError(
            f"a key or table name has more than {MAX_DEPTH} dotted parts; a policy file "
            "needs only a few",
            source=source, line=line,
        )


def _deep_line(text: str) -> int | None:
    """Return the first line that opens more than MAX_DEPTH brackets, if one does."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count("[") + line.count("{") > MAX_DEPTH:
            return number
    return None


def _number_error(exc: ValueError, source: str, text: str) -> PolicyError:
    """Turn tomllib's ValueError for a number it cannot convert into a PolicyError."""
    digits = sys.get_int_max_str_digits() or 4300
    found = re.search(rf"[0-9_]{{{digits + 1},}}", text)
    line = None if found is None else text.count("\n", 0, found.start()) + 1
    return PolicyError(
        f"a number here is too long to read ({str(exc).split(';')[0]}); numbers in a policy "
        "file are short (a year, a count): check this line",
        field=None if line is None else LineIndex(text).field_at(line),
        source=source, line=line,
    )


_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _toml_error(exc: tomllib.TOMLDecodeError, source: str, text: str) -> PolicyError:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)
    column: int | None = getattr(exc, "colno", None)
    found = _AT_LINE.search(message)
    if found:
        message = message[: found.start()]
        line, column = int(found.group(1)), int(found.group(2))
    message = message.removesuffix(" (at end of document)")
    where = f" (column {column})" if column else ""
    field = None
    if line is not None:
        field = LineIndex(text).field_at(line)
    low = message.lower()
    if "overwrite" in low or "twice" in low:
        hint = "a key or table is given twice; keep one of them"
    else:
        hint = "fix the TOML syntax here (strings in double quotes, tables as [name])"
    return PolicyError(f"not valid TOML: {message}{where}; {hint}", field=field,
                       source=source, line=line)

