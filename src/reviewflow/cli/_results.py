"""CLI commands for the demo, results, publication, ballots and the diagram."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from reviewflow.ballots import CloseResult
from reviewflow.cli._env import Env
from reviewflow.cli._output import (
    echo_text,
    err_console,
    escape,
    out_console,
    print_json,
    results_table,
    table,
)
from reviewflow.exceptions import ConflictError, InputError, ScrubIncomplete
from reviewflow.scoring import GradeScale

__all__ = ["COMMANDS"]


# ---------------------------------------------------------------------- demo


@click.command()
@click.option("--branches", default=50, show_default=True, type=click.IntRange(1, 100_000),
              help="How many branches (党组织) to simulate.")
@click.option("--db", "db", metavar="URL|PATH", help="Database for the demo (default: a new "
              "SQLite file reviewflow.db in the output directory; 'memory' for none).")
@click.option("--seed", default=2016, show_default=True, type=int,
              help="Random seed: the same seed gives the same campaign.")
@click.option("--out", "out", default="reviewflow-demo", show_default=True, metavar="DIR",
              help="Output directory (a fresh one next to it if it is not empty).")
@click.option("--rows", default=15, show_default=True, type=click.IntRange(0, 100_000),
              help="Rows of the results table to print.")
@click.pass_obj
def demo(env: Env, branches: int, db: str | None, seed: int, out: str, rows: int) -> int:
    """Run a whole simulated campaign on a frozen clock and print what happened.

    Every stage is simulated: research, reports (a few refused by the content
    rules, one sent back for revision), two approval levels, meetings, comments,
    on-site votes with random counts, the collective talk as one batch step, and
    the special reports. It ends with the results, the audit check and the files.

    \b
    Example:
      reviewflow demo --branches 200 --seed 7
      reviewflow --config reviewflow-demo/reviewflow.toml status
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from reviewflow.demo import YEAR, run_demo
    from reviewflow.model import Stage

    msgs = env.msgs
    out_c = out_console()
    err = err_console()
    started = time.perf_counter()
    per_case_steps = 10  # open, research, report, 2 signs, meeting, 2 comments, evaluation, talk, report
    total = branches * (per_case_steps + 1)
    labels = {s.value: s.label for s in Stage}
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("research", total=total)

        def progress(stage: str, n: int) -> None:
            bar.update(task, advance=n, description=labels.get(stage, stage))

        result = run_demo(branches, db=db, out_dir=out, seed=seed, progress=progress, lang=msgs.lang)
    elapsed = time.perf_counter() - started

    out_c.print(f"[bold]{msgs('demo_title', n=branches, year=YEAR)}[/]")
    out_c.print(msgs("demo_store", store=result.store))
    out_c.print(table(msgs("stage_counts"), [msgs("stage"), "", msgs("cases")],
                      ((s.value, s.label, result.stages.get(s.value, 0)) for s in Stage), right=(2,)))
    out_c.print(table(msgs("refusals_by_reason"), [msgs("reason"), msgs("meaning"), msgs("count")],
                      ((k, msgs.reason(k), v) for k, v in sorted(result.refusals.items())), right=(2,)))
    if result.returns:
        out_c.print(msgs("returned", n=result.returns))
    out_c.print(results_table(result.results, msgs, limit=rows))
    report = result.verify
    if report.ok:
        out_c.print("[green]" + msgs("verify_ok", cases=report.cases, events=report.events) + "[/]")
    else:
        out_c.print("[red]" + msgs("verify_broken", n=len(report.problems)) + "[/]")
    if result.rungs:
        out_c.print(msgs("rungs_fired", n=result.rungs))
    if result.files:
        out_c.print(f"[bold]{msgs('files_written')}:[/]")
        for kind, path in result.files.items():
            out_c.print(f"  {kind:<12} {path}")
        config = result.files.get("config")
        if config is not None and "db" in result.files:
            out_c.print(msgs("next_steps", cmd=f"reviewflow --config {config} status"))
    err.print(f"{elapsed:.2f} s")
    return 0 if report.ok else 1


# ---------------------------------------------------------------------- results and publication


def _results_rows(env: Env) -> list[Any]:
    from reviewflow.export.results import collect_results

    return collect_results(env.campaign())


def _csv_text(rows: list[Any], scale: GradeScale | None = None) -> str:
    """The results as CSV: one column per option of ``scale`` (the campaign's; default the seed's)."""
    from reviewflow.export.xlsx import csv_text

    keys = (scale or GradeScale.default()).keys
    header = ["rank", "case_id", "organization", "secretary", "stage",
              *keys, "valid", "score", "rounded", "grade"]
    return csv_text([header, *([
        "" if r.rank is None else r.rank, r.case_id, r.organization, r.secretary, r.stage,
        *[r.counts.get(k, 0) for k in keys], r.valid,
        "" if r.score is None else r.score, "" if r.rounded is None else r.rounded,
        r.grade,
    ] for r in rows)])


def _write_text(path: str, text: str) -> Path:
    from reviewflow._files import write_file

    return write_file(path, text)  # exclusive temporary file, no link followed, fsync, rename


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx", "md", "html"]),
              default="table", show_default=True, help="Output format.")
@click.option("--out", "out", metavar="FILE", help="Write to FILE (xlsx: default results.xlsx).")
@click.pass_obj
def results(env: Env, fmt: str, out: str | None) -> int:
    """Show the results: vote counts, score, grade and rank per case (测评结果).

    \b
    Examples:
      reviewflow results
      reviewflow results --format xlsx --out 2016-results.xlsx
      reviewflow results --format csv > results.csv
    """
    from reviewflow.export.notice import notice_html, notice_markdown
    from reviewflow.export.xlsx import write_workbook

    campaign = env.campaign()
    rows = _results_rows(env)
    msgs = env.msgs
    if fmt == "xlsx":
        path = write_workbook(rows, out or "results.xlsx", policy=campaign.policy, lang=msgs.lang,
                              title=campaign.policy.name)
        err_console().print(msgs("written", path=path))
        return 0
    if fmt == "table" and out is None:
        out_console().print(results_table(rows, msgs))
        return 0
    if fmt == "json" or fmt == "table":
        text = json.dumps([r.to_json() for r in rows], ensure_ascii=False, indent=2)
    elif fmt == "csv":
        text = _csv_text(rows, campaign.policy.scoring.scale)
    elif fmt == "md":
        text = notice_markdown(rows, policy=campaign.policy)
    else:
        text = notice_html(rows, policy=campaign.policy)
    if out:
        err_console().print(msgs("written", path=_write_text(out, text)))
    else:
        echo_text(text, nl=not text.endswith("\n"))
    return 0


@click.command()
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who publishes (the organizer).")
@click.option("--scope", default=None, help="Where the results are published (公布范围); "
              "default: the policy's scoring.publication.scope.")
@click.option("--out", "out", default=".", show_default=True, metavar="DIR",
              help="Directory for notice.md and notice.html.")
@click.option("--issuer", default="", help="Who issues the notice (e.g. 区教育局党组).")
@click.option("--date", "date", default="", help="Date printed on the notice.")
@click.option("--days", default=None, type=click.IntRange(0, 60),
              help="Publicity period (公示期) in days (default: the policy's).")
@click.option("--key", "key", default=None, metavar="KEY",
              help="Idempotency key: the same publication run again (after a crash or a "
              "time-out) publishes nothing twice.")
@click.option("--reason", "reason", default=None, metavar="TEXT",
              help="Why cases published already are published again (recorded, with what "
              "the new publication supersedes); without it they are refused.")
@click.pass_obj
def publish(env: Env, actor_id: str, scope: str | None, out: str, issuer: str, date: str,
            days: int | None, key: str | None = None, reason: str | None = None) -> int:
    """Publish the results (公示): record it on each scored case, tell the hooks, write the notice.

    Only cases whose evaluations are complete are published. The notice is written
    as Markdown and HTML after the publication is recorded, with the digest of an
    anchor taken then (``reviewflow anchor``), whose file is written as anchor.txt.
    A case published already is refused (already_published) unless --reason says why
    it is published again; run an interrupted publication again with the same --key.

    \b
    Example:
      reviewflow publish --actor bureau --scope 全局党员干部 --issuer 区教育局党组 --out notice/ \\
        --key 2016-publication
      reviewflow publish --actor bureau --reason "school-03 重新测评后更正" --out notice/
    """
    from reviewflow.export.notice import notice_html, notice_markdown

    campaign = env.campaign()
    target = Path(out)
    if not target.is_dir():
        raise InputError(f"--out {out}: no such directory")
    actor = env.actor(actor_id)
    if key is not None and not key.strip():
        raise InputError("--key must not be empty")
    campaign.publish(actor=actor, scope=scope, publicity_days=days, idempotency_key=key, reason=reason)
    rows = [r for r in _results_rows(env) if r.score is not None]
    shown_days = days if days is not None else (
        campaign.policy.scoring.publication.publicity_days or 5)
    anchor = campaign.anchor()  # after the publication: the notice anchors the record
    kw: dict[str, Any] = {"policy": campaign.policy, "issuer": issuer, "date": date,
                          "days": shown_days, "anchor": anchor}
    anchored = _write_text(str(target / "anchor.txt"), anchor.to_text())
    md = _write_text(str(target / "notice.md"), notice_markdown(rows, **kw))
    page = _write_text(str(target / "notice.html"), notice_html(rows, **kw))
    msgs = env.msgs
    out_console().print(msgs("published", scope=scope or "-"))
    out_console().print(msgs("written", path=anchored))
    out_console().print(msgs("written", path=md))
    out_console().print(msgs("written", path=page))
    return 0


@click.command("special-report")
@click.argument("case_id", metavar="CASE")
@click.option("--out", "out", metavar="FILE", help="Write to FILE instead of printing.")
@click.pass_obj
def special_report(env: Env, case_id: str, out: str | None) -> int:
    """Print a skeleton of a case's special report (专题报告) in Markdown, to fill in.

    \b
    Example:
      reviewflow special-report school-01 --out school-01-专题报告.md
    """
    from reviewflow._sealed import sealed_cases
    from reviewflow.export.special_report import special_report_skeleton

    campaign = env.campaign()
    case = sealed_cases(campaign.store, campaign.id, [case_id])[0]  # who and what, as the record says
    row = next((r for r in _results_rows(env) if r.case_id == case_id), None)
    text = special_report_skeleton(case, row)
    if out:
        err_console().print(env.msgs("written", path=_write_text(out, text)))
    else:
        echo_text(text)
    return 0


# ---------------------------------------------------------------------- diagram


@click.command()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "svg", "dot"]), default="mermaid",
              show_default=True, help="mermaid text, Graphviz DOT, or SVG (needs Graphviz).")
@click.option("--out", "out", metavar="FILE", help="Write to FILE instead of printing.")
@click.pass_obj
def diagram(env: Env, fmt: str, out: str | None) -> int:
    """Draw the lifecycle as a state diagram with the policy's deadlines and roles.

    Uses the campaign's policy, or --policy FILE, or the seed's plan when there is
    no campaign yet.

    \b
    Example:
      reviewflow --policy policy.toml diagram > lifecycle.mmd
    """
    from reviewflow.export.diagram import dot, mermaid, svg

    policy = _diagram_policy(env)
    text = {"mermaid": mermaid, "dot": dot, "svg": svg}[fmt](policy)
    if out:
        err_console().print(env.msgs("written", path=_write_text(out, text)))
    else:
        echo_text(text, nl=False)
    return 0


def _diagram_policy(env: Env) -> Any:
    path = env.policy_path()
    if path is not None:
        from reviewflow.policy_file import load_policy

        return load_policy(path)
    try:
        return env.campaign().policy
    except InputError:
        return None


# ---------------------------------------------------------------------- ballots


@click.group()
def ballots() -> None:
    """Ballots of the on-site vote (现场测评): issue tokens, cast, import counts, close.

    \b
    Examples:
      reviewflow ballots issue school-01 --count 40 --category party_members --actor bureau
      reviewflow ballots cast school-01 --token 7KQ2M-XR4PA --choice 好
      reviewflow ballots import school-01 counts.xlsx --actor bureau
      reviewflow ballots close school-01 --actor bureau
      reviewflow ballots revote school-01 --reason "计票有误" --actor bureau
    """


@ballots.command("issue")
@click.argument("case_id", metavar="CASE")
@click.option("--count", required=True, type=click.IntRange(1, 100_000), help="How many tokens.")
@click.option("--category", "category", default="party_member", show_default=True,
              help="Voter category (党员/干部/群众/家长教师 categories of the policy).")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who issues them.")
@click.option("--out", "out", default="tokens.csv", show_default=True, metavar="FILE",
              help="Where the tokens go (.csv, or .html for a printable sheet).")
@click.pass_obj
def ballots_issue(env: Env, case_id: str, count: int, category: str, actor_id: str, out: str) -> int:
    """Issue one-time ballot tokens for a case's vote and write them out (CSV or printable sheet).

    The tokens exist only in this file: hand one to each attendee. The sheet is
    written (readable by its owner only) and flushed to disk before the tokens are
    committed; if it cannot be written, no token is issued, and if the commit fails,
    the sheet is removed.

    \b
    Example:
      reviewflow ballots issue school-01 --count 40 --category party_members --actor bureau
    """
    import os

    from reviewflow._files import write_file
    from reviewflow.exceptions import ReviewflowError, StoreError

    campaign = env.campaign()
    issue = campaign.issue_ballot_tokens
    target = Path(out)
    if os.path.lexists(target):
        raise InputError(f"{out} exists already; tokens are never overwritten, choose another --out")
    if not target.parent.is_dir():
        raise InputError(f"--out {out}: no such directory")
    actor = env.actor(actor_id)
    written: list[Path] = []

    def write_sheet(drawn: Any) -> None:
        # Called again with new tokens if the case changed meanwhile: replace our own sheet.
        text = _token_sheet(case_id, drawn, html_sheet=out.endswith(".html"))
        written[:] = [write_file(out, text, private=True, replace=bool(written))]

    try:
        tokens = list(issue(case_id, {category: count}, actor=actor, before_commit=write_sheet))
    except BaseException as exc:
        # A refusal or a conflict commits nothing; a database failure may come after the
        # commit went through (a lost connection), so the sheet is kept and the user told.
        maybe_committed = not isinstance(exc, ReviewflowError) or (
            isinstance(exc, StoreError) and not isinstance(exc, ConflictError))
        if written and not maybe_committed:
            try:
                os.unlink(written[0])
            except OSError:
                err_console().print(escape(env.msgs("tokens_not_removed", path=written[0])))
        elif written:
            err_console().print(escape(env.msgs("tokens_kept", path=written[0], case=case_id)))
        raise
    out_console().print(env.msgs("tokens_written", n=len(tokens), path=written[0]))
    return 0


def _token_sheet(case_id: str, tokens: Any, *, html_sheet: bool) -> str:
    """The token sheet: CSV (spreadsheet-safe) or a printable HTML page, every value escaped."""
    if html_sheet:
        import html

        cells = "".join(f"<div class=t>{html.escape(str(t.token))}<br><small>"
                        f"{html.escape(case_id)} · {html.escape(t.category)}</small></div>"
                        for t in tokens)
        return ("<!DOCTYPE html><meta charset=utf-8><title>ballot tokens</title><style>"
                ".t{display:inline-block;border:1px dashed #888;padding:1em;margin:.3em;"
                "font-family:monospace}</style>" + cells + "\n")
    from reviewflow.export.xlsx import csv_text

    return csv_text([["case_id", "round", "category", "token"],
                     *([case_id, t.round, t.category, t.token] for t in tokens)])


@ballots.command("cast")
@click.argument("case_id", metavar="CASE")
@click.option("--token", "token", prompt="token", hide_input=True, metavar="TOKEN",
              help="The one-time token from the slip (asked for, unseen, when left out).")
@click.option("--choice", "choice", metavar="OPTION",
              help="The option: a key or label of the policy's scale (good or 好, ...).")
@click.option("--blank", is_flag=True, help="Cast a blank ballot (弃权) instead of a choice.")
@click.pass_obj
def ballots_cast(env: Env, case_id: str, token: str, choice: str | None, blank: bool) -> int:
    """Cast one secret ballot with a one-time token (no voter, token or time is stored).

    \b
    Example:
      reviewflow ballots cast school-01 --token 7KQ2M-XR4PA --choice 好
    """
    if blank == (choice is not None):
        raise InputError("give either --choice OPTION or --blank")
    campaign = env.campaign()
    cast = campaign.cast_ballot
    cast(case_id, token, choice)
    out_console().print(env.msgs("ballot_cast", case=case_id))
    return 0


@ballots.command("import")
@click.argument("case_id", metavar="CASE")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who enters them.")
@click.pass_obj
def ballots_import(env: Env, case_id: str, file: str, actor_id: str) -> int:
    """Import a case's paper-ballot counts (CSV/XLSX, one row per voter category).

    Columns (Chinese or English): 类别/category, 好/good, 较好/fairly_good, 一般/average,
    差/poor, 无效/invalid, 弃权/blank, 发出/issued, 收回/returned. The whole file is
    checked first; a bad cell names its row and column and nothing is recorded.

    \b
    Example:
      reviewflow ballots import school-01 counts.csv --actor bureau
    """
    campaign = env.campaign()
    importer = campaign.import_paper_counts
    actor = env.actor(actor_id)
    done = importer(file, actor=actor, case_id=case_id)
    errors = [r.error for r in done if r.error is not None]
    if errors:
        raise errors[0]
    out_console().print(env.msgs("ballots_imported", n=len(done)))
    return 0


@ballots.command("close")
@click.argument("case_id", metavar="CASE")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who closes the vote.")
@click.pass_obj
def ballots_close(env: Env, case_id: str, actor_id: str) -> int:
    """Close a case's vote: reconcile, check the quorum, freeze the tally.

    \b
    Example:
      reviewflow ballots close school-01 --actor bureau
    """
    campaign = env.campaign()
    close = campaign.close_vote
    scrubbed: ScrubIncomplete | None = None
    try:  # old copies of the ballot rows leave the files (docs/reliability.md)
        result = close(case_id, actor=env.actor(actor_id), scrub=True)
    except ScrubIncomplete as exc:  # after the closing commit: the vote is closed
        scrubbed, result = exc, exc.result
    out_console().print(env.msgs("vote_closed", case=case_id))
    if isinstance(result, CloseResult):
        tally = result.tally
        text = ", ".join(f"{k} {v}" for k, v in tally.counts.items())
        out_console().print(escape(f"{result.status}: {text}; invalid {tally.invalid}, "
                                   f"blank {tally.blank}"))
    if scrubbed is not None:
        _scrub_failed(env, scrubbed, case_id)
        return 1
    return 0


def _scrub_failed(env: Env, exc: ScrubIncomplete, case_id: str | None) -> None:
    err = err_console()
    if case_id is not None:
        err.print(f"[bold red]{escape(env.msgs('scrub_not_done', case=case_id))}[/]")
    err.print(f"[bold red]{escape(env.msgs('error'))}:[/] {escape(str(exc))}")


@ballots.command("scrub")
@click.pass_obj
def ballots_scrub(env: Env) -> int:
    """Remove old copies of the campaign's ballot rows from the database's files.

    ``ballots close`` does it after closing a vote; run this when that scrub was not
    done (another connection was open on the database), with no other connection open.

    \b
    Example:
      reviewflow ballots scrub
    """
    campaign = env.campaign()
    scrub = campaign.scrub_ballots
    try:
        done = scrub()
    except ScrubIncomplete as exc:
        _scrub_failed(env, exc, None)
        return 1
    out_console().print(env.msgs("ballots_scrubbed" if done else "nothing_to_scrub"))
    return 0


@ballots.command("revote")
@click.argument("case_id", metavar="CASE")
@click.option("--reason", "reason", required=True, metavar="TEXT",
              help="Why the vote is held again (recorded on the case, 重新测评理由).")
@click.option("--void", "void", is_flag=True,
              help="The current round is still open: void it (with --reason) first.")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who opens the re-vote.")
@click.pass_obj
def ballots_revote(env: Env, case_id: str, reason: str, void: bool, actor_id: str) -> int:
    """Open a re-vote (重新测评): a new round of a case's vote; the earlier rounds are kept.

    A closed vote changes only this way: its ballots, tally and digest stay on the
    record, the new round is held with new tokens or paper counts and closed again.
    A round still open is voided first with --void.

    \b
    Example:
      reviewflow ballots revote school-01 --reason "计票有误，重新测评" --actor bureau
    """
    if not reason.strip():
        raise InputError("--reason must say why the vote is held again")
    campaign = env.campaign()
    actor = env.actor(actor_id)
    case = campaign.revote(case_id, actor=actor, reason=reason,
                           void_reason=reason if void else None)
    rounds = case.data.get("ballot_vote", {}).get("rounds", [])
    out_console().print(env.msgs("revote_opened", case=case_id, round=len(rounds)))
    return 0


COMMANDS = [demo, results, publish, special_report, diagram, ballots]

# keep print_json importable from here for commands that want it
_ = print_json
