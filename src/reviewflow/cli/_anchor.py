"""CLI command ``anchor``: a checkpoint of the campaign's record, kept and written to a file."""

from __future__ import annotations

import click

from reviewflow.cli._env import Env
from reviewflow.cli._output import err_console, out_console, print_json

__all__ = ["COMMANDS"]


@click.command()
@click.option("--out", "out", metavar="FILE",
              help="Write the anchor file there (keep it away from the database).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def anchor(env: Env, out: str | None, as_json: bool) -> int:
    """Anchor the record: one digest over every case's version and head hash, the refusal
    journal and the policy; kept in the database and written to FILE.

    Keep the file (and print its digest: `publish` puts it in the 公示 notice) where
    whoever can write the database cannot: `reviewflow verify --anchor FILE` then
    detects deleted or re-chained events, deleted cases and a deleted refusal journal.
    With REVIEWFLOW_AUDIT_KEY or REVIEWFLOW_AUDIT_KEY_FILE set, the anchor carries a MAC.

    \b
    Example:
      reviewflow anchor --out anchors/2016-03-01.anchor
    """
    from reviewflow.cli._results import _write_text

    made = env.campaign().anchor()
    written = None if out is None else _write_text(out, made.to_text())
    if as_json:
        print_json({"digest": made.digest, "at": made.at, "campaign": made.campaign_id,
                    "cases": made.cases, "events": made.events, "refusals": made.refusals,
                    "mac": made.mac is not None, "file": None if written is None else str(written)})
        return 0
    out_console().print(env.msgs("anchor_taken", digest=made.digest, at=made.at,
                                 cases=made.cases, events=made.events, refusals=made.refusals))
    if written is not None:
        err_console().print(env.msgs("written", path=written))
    return 0


COMMANDS = [anchor]
