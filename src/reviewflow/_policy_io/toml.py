"""Writing TOML: tables, keys and values as a policy file holds them."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any

from reviewflow.exceptions import PolicyError


class Writer:
    """Collects the lines of a TOML text, table by table."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def text(self) -> str:
        return "\n".join(self.lines).strip() + "\n"

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def header(self, path: str, *, array: bool = False) -> None:
        name = ".".join(_key(p) for p in path.split("."))
        self.lines.append("")
        self.lines.append(f"[[{name}]]" if array else f"[{name}]")

    def pair(self, key: str, value: Any) -> None:
        if value is None:
            return
        self.lines.append(f"{_key(key)} = {_value(value)}")

    def table(self, path: str, data: Mapping[str, Any], *, array: bool = False) -> None:
        """Write a table: its plain values first, then its sub-tables under their headers."""
        self.header(path, array=array)
        nested: list[tuple[str, Any, bool]] = []
        for key, value in data.items():
            if isinstance(value, Mapping) and not _small(value):
                nested.append((key, value, False))
            elif (isinstance(value, list | tuple) and value
                  and all(isinstance(v, Mapping) for v in value)):
                nested.append((key, value, True))
            else:
                self.pair(key, value)
        for key, value, is_array in nested:
            sub = f"{path}.{key}"
            if is_array:
                for item in value:
                    self.table(sub, item, array=True)
            else:
                self.table(sub, value)


def _small(value: Mapping[str, Any]) -> bool:
    return len(value) <= 4 and not any(isinstance(v, Mapping | list | tuple) for v in
                                       value.values())


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _value(value.value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Decimal | Fraction):
        return _string(str(value))
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, set | frozenset):
        return _value(sorted(value))
    raise PolicyError(f"cannot write {value!r} ({type(value).__name__}) as TOML")
