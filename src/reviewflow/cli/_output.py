"""Printing helpers shared by the CLI commands (rich tables on stdout, notes on stderr).

Nothing a user typed reaches the terminal as a control sequence: every console here
shows control characters (an escape, a C1 control, a bidirectional override, a
zero-width character) as their ``\\x1b``/``\\u202e`` escapes (:func:`terminal_text`),
and exports echoed to a terminal get the same treatment (:func:`echo_text`); written
to a file or a pipe, exports stay byte for byte as they are.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape as _markup_escape
from rich.table import Table
from rich.text import Text

from reviewflow.export.results import ResultRow
from reviewflow.i18n import Messages

__all__ = ["echo_text", "err_console", "escape", "out_console", "print_json", "results_table", "table",
           "terminal_text"]

#: Characters a terminal may act on or that change how text reads: C0 controls (not tab
#: or line feed), DEL, C1 controls, and Unicode format characters (bidirectional
#: overrides and isolates, zero-width characters, the BOM).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f"
                     "\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def _shown(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _kept(c: str) -> bool:
    return c in "\n\t" or c.isprintable() or unicodedata.category(c) == "Zs"  # U+3000 too


def terminal_text(text: str) -> str:
    r"""Return ``text`` with every character a terminal could act on shown as its escape
    (line separators, private-use and unassigned characters too); tab and line feed stay.

    >>> terminal_text("s1\x1b[2J\u202egnp.exe 第一中学")
    's1\\x1b[2J\\u202egnp.exe 第一中学'
    """
    text = _UNSAFE.sub(lambda m: _shown(m.group()), text)
    if all(_kept(c) for c in text):
        return text
    return "".join(c if _kept(c) else _shown(c) for c in text)


def escape(text: str) -> str:
    """Return ``text`` safe to print with rich: markup escaped, control characters shown."""
    return _markup_escape(terminal_text(text))


class _SafeConsole(Console):
    """A rich console that shows control characters of any text it renders as escapes."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(terminal_text(text), **kwargs)


def out_console() -> Console:
    """Return the console for results (stdout)."""
    return _SafeConsole(highlight=False, soft_wrap=True)


def err_console() -> Console:
    """Return the console for notes and warnings (stderr)."""
    return _SafeConsole(stderr=True, highlight=False, soft_wrap=True)


def echo_text(text: str, *, nl: bool = True) -> None:
    """Echo an export (CSV, Markdown, HTML, JSON...) on stdout: exact when stdout is a file
    or a pipe, control characters shown as escapes when it is a terminal."""
    import click

    if sys.stdout.isatty():
        text = terminal_text(text)
    click.echo(text, nl=nl)


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]],
          *, right: Sequence[int] = ()) -> Table:
    """Build a rich table with every value escaped."""
    t = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        t.add_column(escape(header), justify="right" if i in right else "left")
    for row in rows:
        t.add_row(*[escape("" if v is None else str(v)) for v in row])
    return t


def results_table(rows: Sequence[ResultRow], msgs: Messages, *, limit: int | None = None) -> Table:
    """Build the results table (rank, case, organisation, secretary, valid, score, grade)."""
    shown = rows if limit is None else rows[:limit]
    headers = [msgs("rank"), msgs("case"), msgs("organization"), msgs("secretary"),
               msgs("valid"), msgs("score"), msgs("grade")]
    t = table(msgs("results"), headers,
              ([r.rank, r.case_id, r.organization, r.secretary, r.valid, r.rounded, r.grade]
               for r in shown), right=(0, 4, 5))
    if limit is not None and len(rows) > limit:
        t.caption = msgs("more_rows", n=len(rows) - limit)
    return t


def print_json(data: Any) -> None:
    """Print JSON on stdout (UTF-8, not escaped), for scripts; on a terminal, control and
    format characters are written as JSON escapes (the same JSON, nothing for the terminal
    to act on)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if sys.stdout.isatty():
        text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    click_echo(text)


def click_echo(text: str) -> None:
    """Write text to stdout through click (handles encodings and pipes)."""
    import click

    click.echo(text)
