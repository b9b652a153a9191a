"""Every file reviewflow writes: a fresh temporary file (never a planted one, never through a
link), flushed, then renamed; token sheets private and all-or-nothing with their tokens.

The links are real symbolic links in ``tmp_path``; the databases are real (SQLite, and
PostgreSQL for a sheet that cannot be written while the database still could commit).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reviewflow._files import file_writer, write_file
from reviewflow.cli import main
from reviewflow.exceptions import InputError
from reviewflow.policy_file import DEFAULT_POLICY_FILE

NOW = "2016-01-05T09:00+08:00"
MEETING = "2016-01-12T09:00+08:00"
BRANCHES = "编号,党组织,书记\nschool-01,第一中学党支部,张三\nschool-02,第二小学党支部,李四\n"
REPORT = {"report": {
    "duty": "认真履行第一责任人职责。", "progress": "全年开展主题党日十二次。",
    "problems": [{"description": "组织生活不规范", "causes": "重视不够", "measure": "建立台账，逐条整改"}],
    "plans": "坚持问题导向，针对突出问题逐条提出解决方案，措施有抓手、有载体、可监督、可考核。",
}}
SECRET = "the attacker's file, untouched\n"


def cli(*args: str) -> int:
    return main(["--lang", "en", *args])


def to_meeting(case: str = "school-01", *, db: tuple[str, ...] = ()) -> None:
    """Move a case to the on-site vote with the CLI (research, report, two sign-offs, meeting)."""
    def fire(event: str, actor: str, data: dict[str, Any], now: str = NOW, *extra: str) -> None:
        code = cli(*db, "--now", now, "fire", case, event, "--actor", actor, "--data",
                   json.dumps(data, ensure_ascii=False), *extra)
        assert code == 0, event

    fire("finish_research", "bureau", {"problems": ["组织生活不规范"]})
    fire("submit_report", f"sec-{case}", REPORT)
    fire("sign_off", "li", {"comment": "同意"}, NOW, "--role", "guidance_group")
    fire("sign_off", "bureau", {"comment": "同意"})
    fire("hold_meeting", "bureau", {"attendance": {"party_members": 30}}, MEETING)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text(BRANCHES, encoding="utf-8")
    assert cli("init", "policy.toml", "--rehearsal") == 0
    assert cli("--now", NOW, "cases", "import", "branches.csv") == 0
    return tmp_path


def plant(link: Path, target: Path) -> None:
    target.write_text(SECRET, encoding="utf-8")
    link.symlink_to(target)


def token_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from rf_ballot_tokens").fetchone()[0])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------- planted links

WRITERS = {
    "results csv": ("results", "--format", "csv", "--out", "{out}"),
    "results json": ("results", "--format", "json", "--out", "{out}"),
    "results md": ("results", "--format", "md", "--out", "{out}"),
    "results html": ("results", "--format", "html", "--out", "{out}"),
    "results xlsx": ("results", "--format", "xlsx", "--out", "{out}"),
    "special report": ("special-report", "school-01", "--out", "{out}"),
    "diagram": ("diagram", "--out", "{out}"),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_no_writer_follows_a_planted_part_link_or_a_link_at_the_target(workdir: Path, name: str) -> None:
    out = workdir / "out.file"
    part_target, out_target = workdir / "secret-part.txt", workdir / "secret-out.txt"
    plant(workdir / "out.file.part", part_target)  # before the fix: written through
    plant(out, out_target)  # a link at the target is replaced, what it points to left alone
    args = [a.replace("{out}", str(out)) for a in WRITERS[name]]
    assert cli(*args) == 0
    assert part_target.read_text(encoding="utf-8") == SECRET
    assert out_target.read_text(encoding="utf-8") == SECRET
    assert not out.is_symlink()
    assert out.is_file()
    assert out.stat().st_size > 0
    assert leftovers(workdir) == []


def test_publish_writes_its_notices_past_planted_links(workdir: Path) -> None:
    to_meeting()
    for args in (["fire", "school-01", "comment", "--actor", "wang", "--role", "superior_secretary",
                  "--data", '{"text": "好"}'],
                 ["fire", "school-01", "comment", "--actor", "zhao", "--role", "department_delegate",
                  "--data", '{"text": "较好"}'],
                 ["fire", "school-01", "finish_evaluation", "--actor", "bureau", "--data",
                  '{"vote": {"good": 10, "fairly_good": 5, "average": 3, "poor": 2}}']):
        assert cli("--now", MEETING, *args) == 0, args
    folder = workdir / "notice"
    folder.mkdir()
    for name in ("notice.md", "notice.html"):
        plant(folder / f"{name}.part", workdir / f"secret-{name}.part")
        plant(folder / name, workdir / f"secret-{name}")
    assert cli("--now", MEETING, "publish", "--actor", "bureau", "--scope", "全局", "--out",
               str(folder)) == 0
    for name in ("notice.md", "notice.html"):
        assert (workdir / f"secret-{name}.part").read_text(encoding="utf-8") == SECRET
        assert (workdir / f"secret-{name}").read_text(encoding="utf-8") == SECRET
        assert not (folder / name).is_symlink()
        assert "第一中学党支部" in (folder / name).read_text(encoding="utf-8")
    assert leftovers(folder) == []


def test_init_writes_its_campaign_file_past_a_planted_part_link(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    plant(tmp_path / "reviewflow.toml.part", tmp_path / "secret-config")
    assert cli("init", "policy.toml", "--rehearsal") == 0
    assert (tmp_path / "secret-config").read_text(encoding="utf-8") == SECRET
    assert "campaign" in (tmp_path / "reviewflow.toml").read_text(encoding="utf-8")


def test_init_never_replaces_a_link_planted_at_the_campaign_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "reviewflow.toml").symlink_to(tmp_path / "nowhere")  # a dangling link
    assert cli("init", "policy.toml") == 2
    assert (tmp_path / "reviewflow.toml").is_symlink()
    assert not (tmp_path / "nowhere").exists()


# ---------------------------------------------------------------------- token sheets


def test_ballots_issue_never_writes_tokens_through_a_planted_part_link(workdir: Path) -> None:
    to_meeting()
    plant(workdir / "tokens.csv.part", workdir / "attacker.csv")  # before the fix: every token there
    assert cli("--now", MEETING, "ballots", "issue", "school-01", "--count", "5", "--actor", "bureau",
               "--out", "tokens.csv") == 0
    assert (workdir / "attacker.csv").read_text(encoding="utf-8") == SECRET
    sheet = (workdir / "tokens.csv").read_text(encoding="utf-8").splitlines()
    assert len(sheet) == 6
    assert token_rows(workdir / "reviewflow.db") == 5


@pytest.mark.parametrize("fmt", ["csv", "html"])
def test_token_sheets_are_readable_by_their_owner_only(workdir: Path, fmt: str) -> None:
    to_meeting()
    os.umask(0o022)
    assert cli("--now", MEETING, "ballots", "issue", "school-01", "--count", "3", "--actor", "bureau",
               "--out", f"tokens.{fmt}") == 0
    mode = stat.S_IMODE((workdir / f"tokens.{fmt}").stat().st_mode)
    assert mode == 0o600, oct(mode)  # before the fix: 0644, every local user could read the tokens


def test_a_part_file_in_the_way_stops_nothing_and_the_sheet_holds_the_committed_tokens(
    workdir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    to_meeting()
    (workdir / "tokens.csv.part").mkdir()  # before the fix: tokens committed, sheet lost, exit 2
    code = cli("--now", MEETING, "ballots", "issue", "school-01", "--count", "4", "--actor", "bureau",
               "--out", "tokens.csv")
    assert code == 0, capsys.readouterr().err
    lines = (workdir / "tokens.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(lines) == 4
    assert token_rows(workdir / "reviewflow.db") == 4
    # each token of the sheet casts a ballot: the sheet holds exactly the committed tokens
    for line in lines:
        token = line.rsplit(",", 1)[1]
        assert cli("ballots", "cast", "school-01", "--token", token, "--choice", "good") == 0


def test_a_link_at_the_sheet_path_is_refused_before_any_token_is_drawn(workdir: Path) -> None:
    to_meeting()
    (workdir / "tokens.csv").symlink_to(workdir / "elsewhere.csv")  # dangling: exists() said no
    assert cli("--now", MEETING, "ballots", "issue", "school-01", "--count", "3", "--actor", "bureau",
               "--out", "tokens.csv") == 2
    assert not (workdir / "elsewhere.csv").exists()
    assert token_rows(workdir / "reviewflow.db") == 0


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.db
def test_a_sheet_that_cannot_be_written_issues_no_token(tmp_path: Path, postgresql_factory: Any) -> None:
    """The database could commit (it is a server), the sheet cannot be written (a file-size
    limit of 4 KiB for the CLI process, as a full disk would): no token may be committed."""
    import sqlalchemy as sa

    postgresql_url = postgresql_factory.new()  # a schema of its own: the counts below are all ours
    env = {**os.environ, "REVIEWFLOW_LANG": "en"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text(BRANCHES, encoding="utf-8")
    def run(*args: str, limit: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reviewflow.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False,
                              preexec_fn=_limit_file_size if limit else None)

    assert run("init", "policy.toml", "--rehearsal", "--db", postgresql_url).returncode == 0
    assert run("--now", NOW, "cases", "import", "branches.csv").returncode == 0
    for now, event, actor, data, *extra in (
        (NOW, "finish_research", "bureau", {"problems": ["组织生活不规范"]}),
        (NOW, "submit_report", "sec-school-01", REPORT),
        (NOW, "sign_off", "li", {"comment": "同意"}, "--role", "guidance_group"),
        (NOW, "sign_off", "bureau", {"comment": "同意"}),
        (MEETING, "hold_meeting", "bureau", {"attendance": {"party_members": 30}}),
    ):
        done = run("--now", now, "fire", "school-01", event, "--actor", actor, "--data",
                   json.dumps(data, ensure_ascii=False), *extra)
        assert done.returncode == 0, done.stderr
    done = run("--now", MEETING, "ballots", "issue", "school-01", "--count", "2000", "--actor",
               "bureau", "--out", "tokens.csv", limit=True)
    engine = sa.create_engine(postgresql_url)
    try:
        with engine.connect() as conn:
            tokens = conn.execute(sa.text("select count(*) from rf_ballot_tokens")).scalar_one()
            issued = conn.execute(sa.text(
                "select count(*) from rf_events where event = 'issue_ballots'")).scalar_one()
    finally:
        engine.dispose()
    assert (tokens, issued) == (0, 0)  # before the fix: 2,000 tokens committed, their text lost
    assert done.returncode == 2, done.stderr
    assert "tokens.csv" in done.stderr
    assert "cannot_write" in done.stderr
    assert not (tmp_path / "tokens.csv").exists()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------- the library's hook


def _meeting_campaign(store: Any = None) -> Any:
    from reviewflow.model import Stage
    from reviewflow.testing import Cast, drive_to, seed_campaign

    campaign, clock = seed_campaign(store=store)
    cast = Cast.default()
    campaign.open_case("s1", organization="第一中学党支部", secretary=cast.secretary("s1"))
    drive_to(campaign, "s1", Stage.EVALUATION, cast=cast, clock=clock)
    return campaign


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_before_commit_sees_exactly_the_tokens_that_count_and_a_raise_commits_nothing(
    tmp_path: Path, backend: str,
) -> None:
    from reviewflow.testing import Cast

    bureau = Cast.default().organizer
    campaign = _meeting_campaign(None if backend == "memory" else f"sqlite:///{tmp_path / 'rf.db'}")
    version = campaign.case("s1").version

    def refuse(tokens: Any) -> None:
        assert len(tokens) == 3
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        campaign.issue_ballot_tokens("s1", {"party_member": 3}, actor=bureau, before_commit=refuse)
    assert campaign.case("s1").version == version  # no event
    seen: list[Any] = []
    tokens = campaign.issue_ballot_tokens("s1", {"party_member": 3}, actor=bureau,
                                          before_commit=seen.append)
    assert [list(s) for s in seen] == [tokens]
    for t in tokens:  # the kept tokens are the committed ones; none of the refused call's
        campaign.cast_ballot("s1", t.token, "good")
    assert campaign.case("s1").history[-1].data["issued"] == {"party_member": 3}


def test_before_commit_runs_again_with_the_new_tokens_after_a_conflict(tmp_path: Path) -> None:
    from reviewflow.campaign import Campaign
    from reviewflow.exceptions import BallotError
    from reviewflow.store.sql import SqlStore
    from reviewflow.testing import Cast

    cast = Cast.default()
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    campaign = _meeting_campaign(url)
    other = Campaign(campaign.policy, store=SqlStore(url), campaign_id=campaign.id,
                     clock=campaign.clock)
    calls: list[list[Any]] = []

    def keep(tokens: Any) -> None:
        calls.append(list(tokens))
        if len(calls) == 1:  # another writer changes the case between build and commit
            other.fire("s1", "comment", actor=cast.superior, text="工作扎实")

    tokens = campaign.issue_ballot_tokens("s1", {"public": 2}, actor=cast.organizer, before_commit=keep)
    assert len(calls) == 2
    assert calls[1] == tokens
    assert {t.token for t in calls[0]}.isdisjoint(t.token for t in tokens)
    try:
        with pytest.raises(BallotError) as info:
            campaign.cast_ballot("s1", calls[0][0].token, "good")
        assert info.value.reason == "unknown_token"
        campaign.cast_ballot("s1", tokens[0].token, "good")
    finally:
        other.store.close()
        campaign.store.close()


def test_file_writer_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    target.write_text("old\n", encoding="utf-8")

    def export() -> None:
        with file_writer(target) as fh:
            fh.write(b"half a file")
            raise RuntimeError("the export failed half-way")

    with pytest.raises(RuntimeError):
        export()
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_file_writer_skips_a_planted_temporary_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda _n: next(names))
    plant(tmp_path / ".r.csv.aaaa.tmp", tmp_path / "secret")  # an attacker who guessed the name
    write_file(tmp_path / "r.csv", "rank,case_id\r\n")
    assert (tmp_path / "secret").read_text(encoding="utf-8") == SECRET
    assert (tmp_path / "r.csv").read_bytes() == b"rank,case_id\r\n"
    assert not (tmp_path / ".r.csv.bbbb.tmp").exists()


def test_write_file_refusals_name_the_path_and_a_reason(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"exists already.*\[exists\]") as caught:
        write_file(tmp_path / "link", "x", replace=False)
    assert caught.value.reason == "exists"  # type: ignore[attr-defined]
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(InputError, match=r"does not exist.*\[no_directory\]"):
        write_file(tmp_path / "no" / "r.csv", "x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match=r"\[cannot_write\]"):
        write_file(tmp_path / "dir", "x")
    assert leftovers(tmp_path) == []
    private = write_file(tmp_path / "p.csv", "t", private=True)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_no_module_writes_a_file_but_through_the_helper() -> None:
    """Every writer goes through reviewflow._files (write_file / file_writer): no other module
    calls write_text, write_bytes, open() for writing, os.open or a path-taking save()."""
    import ast

    import reviewflow

    root = Path(reviewflow.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_files.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            modes += [k.value.value for k in node.keywords
                      if k.arg == "mode" and isinstance(k.value, ast.Constant)]
            writing_open = name == "open" and any(set(str(m)) & set("wax+") for m in modes)
            os_open = name == "open" and isinstance(func, ast.Attribute) and getattr(
                func.value, "id", "") == "os"
            if name in ("write_text", "write_bytes", "mkstemp", "NamedTemporaryFile") or writing_open \
                    or os_open or (name == "save" and not (node.args and isinstance(node.args[0], ast.Name)
                                                          and node.args[0].id == "fh")):
                found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert found == []
