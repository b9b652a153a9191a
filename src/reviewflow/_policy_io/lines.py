"""Where each table and key of a TOML text is: the line a PolicyError points to."""

from __future__ import annotations

import json
import re

from reviewflow._policy_io.keys import MAX_DEPTH

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_PART_RE = re.compile(_PART)
#: A key of more than MAX_DEPTH dotted parts, where keys start: at a line's start (a header's
#: after its brackets) or after "{" or "," (inline tables). Strings end at the line's end,
#: so every scan stops there: linear in the text.
_LINE_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
LONG_DOTTED = re.compile(
    rf"(?:^|[{{,])[ \t]*+\[*+[ \t]*+(?:{_LINE_PART}[ \t]*+\.[ \t]*+){{{MAX_DEPTH},}}{_LINE_PART}",
    re.MULTILINE,
)
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_INLINE_KEY_RE = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")


def _parts(dotted: str) -> list[str]:
    out = []
    for token in _PART_RE.findall(dotted):
        if token.startswith('"'):
            try:
                token = json.loads(token)
            except ValueError:
                token = token[1:-1]
        elif token.startswith("'"):
            token = token[1:-1]
        out.append(token)
    return out


class LineIndex:
    """Where each table and key of a TOML text is (best effort, for error messages).

    Paths are written as the reader names fields: ``stages.drafting.due.at``,
    ``approval.levels[1].roles``. One pass, linear in the size of the text.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        self.at_line: dict[int, str] = {}
        #: For each array of tables, the path of its latest element.
        self.current: dict[str, str] = {}
        counts: dict[str, int] = {}
        table = ""
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                parts = _parts(header.group(2))
                if header.group(1) == "[[":
                    parent = self.expand(parts[:-1])
                    base = f"{parent}.{parts[-1]}" if parent else parts[-1]
                    index = counts.get(base, 0)
                    counts[base] = index + 1
                    self.add(base, number)
                    table = f"{base}[{index}]"
                    self.current[base] = table
                else:
                    table = self.expand(parts)
                self.add(table, number)
                self.at_line[number] = table
                continue
            keyed = _KEY_RE.match(line)
            if not keyed:
                continue
            key = ".".join(_parts(keyed.group(1)))
            path = f"{table}.{key}" if table else key
            self.add(path, number)
            self.at_line[number] = path
            rest = keyed.group(2)
            if rest.lstrip().startswith("{"):
                for inner in _INLINE_KEY_RE.findall(rest):
                    self.lines.setdefault(f"{path}.{'.'.join(_parts(inner))}", number)
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote

    def expand(self, parts: list[str]) -> str:
        """Join a header's parts, pointing into the latest element of any array of tables."""
        path = ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            path = self.current.get(path, path)
        return path

    def add(self, key: str, number: int) -> None:
        """Record the first line of ``key`` and of each table enclosing it."""
        while key and key not in self.lines:
            self.lines[key] = number
            cut = max(key.rfind("."), key.rfind("["))
            if cut <= 0:
                break
            key = key[:cut]

    def line_of(self, field: str) -> int | None:
        """Return the line of ``field`` or of its nearest enclosing table or key."""
        while field:
            if field in self.lines:
                return self.lines[field]
            cut = max(field.rfind("."), field.rfind("["))
            if cut <= 0:
                return None
            field = field[:cut]
        return None

    def field_at(self, number: int) -> str | None:
        """Return the path of the key or table on a line, if that line has one."""
        return self.at_line.get(number)


# --------------------------------------------------------------------------- writing
