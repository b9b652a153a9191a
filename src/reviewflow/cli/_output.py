"""Printing helpers shared by the CLI commands (rich tables on stdout, notes on stderr)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reviewflow.export.results import ResultRow
from reviewflow.i18n import Messages

__all__ = ["err_console", "escape", "out_console", "print_json", "results_table", "table"]


def out_console() -> Console:
    """Return the console for results (stdout)."""
    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    """Return the console for notes and warnings (stderr)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


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
    """Print JSON on stdout (UTF-8, not escaped), for scripts."""
    click_echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def click_echo(text: str) -> None:
    """Write text to stdout through click (handles encodings and pipes)."""
    import click

    click.echo(text)
