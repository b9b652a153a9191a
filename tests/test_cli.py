"""The reviewflow command line: every command once as a real subprocess on a SQLite file, and
bad input for every command (exit 2, nothing written) in-process through ``main``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reviewflow.cli import main
from reviewflow.policy_file import DEFAULT_POLICY_FILE

NOW = "2016-01-05T09:00+08:00"
REPORT = {
    "report": {
        "duty": "认真履行第一责任人职责。",
        "progress": "全年开展主题党日十二次。",
        "problems": [{"description": "组织生活不规范", "causes": "重视不够",
                      "measure": "建立台账，逐条整改"}],
        "plans": "坚持问题导向，针对突出问题逐条提出解决方案，措施有抓手、有载体、可监督、可考核。",
    }
}
BRANCHES = "编号,党组织,书记,备注\nschool-01,第一中学党支部,张三,\nschool-02,第二小学党支部,李四,x\n"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m reviewflow.cli ARGS`` in ``cwd``; return the finished process."""
    full_env = {**os.environ, "REVIEWFLOW_LANG": "en", "COLUMNS": "200", **(env or {})}
    full_env.pop("REVIEWFLOW_NOW", None)
    full_env.pop("REVIEWFLOW_DB", None)
    if env and "REVIEWFLOW_NOW" in env:
        full_env["REVIEWFLOW_NOW"] = env["REVIEWFLOW_NOW"]
    return subprocess.run([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in this process; return (exit code, stdout, stderr)."""
    code = main(["--lang", "en", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the seed's policy, an initialised campaign and two imported cases."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REVIEWFLOW_NOW", raising=False)
    monkeypatch.delenv("REVIEWFLOW_DB", raising=False)
    monkeypatch.delenv("REVIEWFLOW_CONFIG", raising=False)
    monkeypatch.delenv("REVIEWFLOW_CAMPAIGN", raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text(BRANCHES, encoding="utf-8")
    (tmp_path / "report.json").write_text(json.dumps(REPORT, ensure_ascii=False), encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", NOW, "cases", "import", "branches.csv"]) == 0
    return tmp_path


def counts(db: Path) -> tuple[int, int]:
    """Return (cases, events) stored in a SQLite file."""
    with sqlite3.connect(db) as conn:
        cases = conn.execute("select count(*) from rf_cases").fetchone()[0]
        events = conn.execute("select count(*) from rf_events").fetchone()[0]
    return int(cases), int(events)


# ---------------------------------------------------------------------- each command as a subprocess


def test_demo_runs_a_whole_campaign_on_sqlite_and_leaves_files(tmp_path: Path) -> None:
    done = run("demo", "--branches", "6", "--seed", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "audit chain intact: 6 cases" in done.stdout
    out = tmp_path / "reviewflow-demo"
    for name in ("reviewflow.db", "results.xlsx", "notice.md", "notice.html", "reviewflow.toml"):
        assert (out / name).is_file(), name
    assert counts(out / "reviewflow.db")[0] == 6
    # the CLI can inspect what the demo left, through the campaign file it wrote
    status = run("--config", str(out / "reviewflow.toml"), "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["stages"]["closed"] == 6


def test_init_policy_check_and_import_as_subprocesses(tmp_path: Path) -> None:
    example = run("policy", "example", cwd=tmp_path)
    assert example.returncode == 0
    (tmp_path / "policy.toml").write_text(example.stdout, encoding="utf-8")
    (tmp_path / "branches.csv").write_text(BRANCHES, encoding="utf-8")
    checked = run("policy", "check", "policy.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "valid" in checked.stdout
    assert not (tmp_path / "reviewflow.db").exists()
    made = run("init", "policy.toml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "reviewflow.toml").is_file()
    imported = run("cases", "import", "branches.csv", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 cases" in imported.stdout
    assert "备注" in imported.stderr  # the ignored column is named
    assert counts(tmp_path / "reviewflow.db") == (2, 2)


def test_read_commands_as_subprocesses(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"REVIEWFLOW_NOW": NOW}
    code, out, _err = cli("--now", NOW, "status", "--json", capsys=capsys)  # status: see the demo test
    assert code == 0
    assert json.loads(out)["stages"]["research"] == 2
    shown = run("show", "school-01", cwd=workdir, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "第一中学党支部" in shown.stdout
    may = run("allowed", "school-01", "--actor", "bureau", "--json", cwd=workdir, env=env)
    assert may.returncode == 0, may.stderr
    assert {p["event"]: p["allowed"] for p in json.loads(may.stdout)}["finish_research"] is True
    verified = run("verify", cwd=workdir)
    assert verified.returncode == 0
    assert "intact" in verified.stdout
    drawn = run("diagram", cwd=workdir)
    assert drawn.returncode == 0
    assert drawn.stdout.startswith("stateDiagram-v2")
    assert "due 2016-01-18" in drawn.stdout


def test_fire_refusal_and_success_as_subprocesses(workdir: Path) -> None:
    env = {"REVIEWFLOW_NOW": NOW}
    refused = run("fire", "school-01", "finish_research", "--actor", "sec-school-01",
                  "--data", '{"problems": ["x"]}', cwd=workdir, env=env)
    assert refused.returncode == 1
    assert "not_permitted" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = run("fire", "school-01", "finish_research", "--actor", "bureau",
               "--data", '{"problems": ["组织生活不规范"]}', cwd=workdir, env=env)
    assert done.returncode == 0, done.stderr
    assert "drafting" in done.stdout


def test_messages_in_chinese(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--lang", "zh", "--now", NOW, "fire", "school-01", "submit_report", "--actor", "bureau"])
    _out, err = capsys.readouterr()
    assert code == 1
    assert "已拒绝" in err
    assert "案例不在此事件所需的阶段" in err


def test_results_publish_tick_upgrade_and_special_report_as_subprocesses(
    workdir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"REVIEWFLOW_NOW": NOW}
    as_csv = run("results", "--format", "csv", cwd=workdir)
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[0].startswith("rank,case_id")
    published = run("publish", "--actor", "bureau", "--scope", "全局", cwd=workdir)
    assert published.returncode == 2  # nothing is scored yet: nothing to publish, nothing written
    assert "no case has complete evaluations" in published.stderr
    assert not (workdir / "notice.md").exists()
    assert cli("results", "--format", "xlsx", "--out", "r.xlsx", capsys=capsys)[0] == 0
    assert (workdir / "r.xlsx").is_file()
    ticked = run("tick", "--json", cwd=workdir, env=env)
    assert ticked.returncode in (0, 2), ticked.stderr  # 2: the sweep is not in this version
    if ticked.returncode == 0:
        assert "fired" in json.loads(ticked.stdout)
    upgraded = run("db", "upgrade", cwd=workdir)
    assert upgraded.returncode == 0, upgraded.stderr
    skeleton = run("special-report", "school-01", cwd=workdir)
    assert skeleton.returncode == 0, skeleton.stderr
    assert "整改清单" in skeleton.stdout


def test_ballots_as_a_subprocess(workdir: Path) -> None:
    issued = run("ballots", "issue", "school-01", "--count", "3", "--actor", "bureau",
                 "--out", "t.csv", cwd=workdir)
    assert issued.returncode == 1  # the case is still in research: no vote yet
    assert "wrong_stage" in issued.stderr
    assert not (workdir / "t.csv").exists()


def test_help_has_an_example_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from reviewflow.cli import _register, app

    _register()
    names: list[list[str]] = []
    for name, command in app.commands.items():
        sub = getattr(command, "commands", None)
        if sub:
            names += [[name, s] for s in sub]
        else:
            names.append([name])
    assert len(names) >= 18
    for args in names:
        code, out, _ = cli(*args, "--help", capsys=capsys)
        assert code == 0
        assert "Example" in out, args


# ---------------------------------------------------------------------- a whole case through fire


def test_a_case_goes_through_every_stage_from_the_cli(workdir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def fire(case: str, event: str, actor: str, data: dict[str, Any] | None = None,
             now: str = NOW, *extra: str) -> int:
        args = ["--now", now, "fire", case, event, "--actor", actor, *extra]
        if data is not None:
            args += ["--data", json.dumps(data, ensure_ascii=False)]
        code, _out, _err = cli(*args, capsys=capsys)
        return code

    assert fire("school-01", "finish_research", "bureau", {"problems": ["组织生活不规范"]}) == 0
    assert cli("--now", NOW, "fire", "school-01", "submit_report", "--actor", "sec-school-01",
               "--data-file", "report.json", capsys=capsys)[0] == 0
    assert fire("school-01", "sign_off", "li", {"comment": "同意"}, NOW, "--role", "guidance_group") == 0
    assert fire("school-01", "sign_off", "bureau", {"comment": "同意"}) == 0
    meeting = "2016-01-12T09:00+08:00"
    assert fire("school-01", "hold_meeting", "bureau", {"attendance": {"party_members": 30}}, meeting) == 0
    assert fire("school-01", "comment", "wang", {"text": "好"}, meeting, "--role", "superior_secretary") == 0
    assert fire("school-01", "comment", "zhao", {"text": "较好"}, meeting,
                "--role", "department_delegate") == 0
    code, _out, err = cli("--now", meeting, "ballots", "issue", "school-01", "--count", "3",
                          "--actor", "bureau", "--out", "tokens.csv", capsys=capsys)
    assert code == 0, err
    assert len((workdir / "tokens.csv").read_text(encoding="utf-8").splitlines()) == 4
    (workdir / "counts.csv").write_text("类别,好,较好,一般,差,发出,收回\nparty_member,10,5,3,2,20,20\n",
                                        encoding="utf-8")
    for args in (["ballots", "import", "school-01", "counts.csv", "--actor", "bureau"],
                 ["ballots", "close", "school-01", "--actor", "bureau"]):
        code, _out, err = cli("--now", meeting, *args, capsys=capsys)
        assert code == 0, (args, err)
    assert fire("school-01", "finish_evaluation", "bureau", None, meeting) == 0
    assert fire("school-01", "hold_talk", "bureau", {"notes": "约谈"}, meeting) == 0
    assert fire("school-01", "submit_special_report", "sec-school-01", {"text": "专题报告"}, meeting) == 0
    code, out, _ = cli("results", "--format", "json", capsys=capsys)
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["case_id"] == "school-01"
    assert rows[0]["rounded"] == "79.00"
    assert rows[0]["rank"] == 1
    code, out, _ = cli("show", "school-01", "--json", capsys=capsys)
    assert json.loads(out)["stage"] == "closed"
    code, out, err = cli("--now", meeting, "publish", "--actor", "bureau", "--scope", "全局",
                         "--issuer", "区教育局党组", capsys=capsys)
    assert code == 0, err
    notice = (workdir / "notice.md").read_text(encoding="utf-8")
    assert "第一中学党支部" in notice
    assert "79.00" in notice
    assert "<td>第一中学党支部</td>" in (workdir / "notice.html").read_text(encoding="utf-8")
    # The notice anchors the record: the anchor taken after the publication, in the notice
    anchor = (workdir / "anchor.txt").read_text(encoding="utf-8")
    digest = next(line.split()[1] for line in anchor.splitlines() if line.startswith("digest "))
    assert digest in notice
    assert cli("verify", "--anchor", "anchor.txt", capsys=capsys)[0] == 0


# ---------------------------------------------------------------------- bad input: exit 2, nothing written


def test_init_refuses_bad_policies_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    bad = {
        "syntax.toml": "year = 2016\n[stages\n",
        "deep.toml": "x = " + "[" * 10_000 + "]" * 10_000 + "\n",
        "field.toml": "year = 'two thousand'\n",
        "date.toml": "year = 2016\n[stages.drafting]\ndue = { at = 2016-02-30T00:00:00+08:00 }\n",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        code, _out, err = cli("init", name, capsys=capsys)
        assert code == 2, (name, err)
        assert "Traceback" not in err
        assert name in err
    (tmp_path / "big.toml").write_bytes(b"# " + b"x" * (2 * 1024 * 1024))
    assert cli("init", "big.toml", capsys=capsys)[0] == 2
    assert cli("init", "missing.toml", capsys=capsys)[0] == 2
    assert not (tmp_path / "reviewflow.db").exists()
    assert not (tmp_path / "reviewflow.toml").exists()


def test_policy_check_refuses_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bomb.toml").write_text("a = " + "{ b = " * 5000 + "1" + " }" * 5000 + "\n",
                                        encoding="utf-8")
    (tmp_path / "gbk.toml").write_bytes("name = '考核'\nyear = 2016\n".encode("gbk"))
    (tmp_path / "unreachable.toml").write_text("year = 2016\n[permissions]\nsubmit_report = []\n",
                                               encoding="utf-8")
    for name in ("bomb.toml", "gbk.toml", "nope.toml"):
        code, _out, err = cli("policy", "check", name, capsys=capsys)
        assert code == 2, (name, err)
        assert "Traceback" not in err
    # A stage nobody may reach is an error of the policy (it was a warning, exit 0).
    code, _out, err = cli("policy", "check", "unreachable.toml", capsys=capsys)
    assert code == 2
    assert "permissions.submit_report" in err
    assert "cannot be reached" in err
    assert "Traceback" not in err
    assert cli("policy", "check", "unreachable.toml", "--strict", capsys=capsys)[0] == 2
    assert list(tmp_path.glob("*.db")) == []


def test_init_refuses_an_existing_campaign_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (workdir / "reviewflow.toml").read_text(encoding="utf-8")
    code, _out, err = cli("init", "policy.toml", capsys=capsys)
    assert code == 2
    assert "exists already" in err
    assert (workdir / "reviewflow.toml").read_text(encoding="utf-8") == before


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.csv", "编号,党组织\ns3,第三中学党支部\n", "missing column"),
    ("dupe.csv", "编号,党组织,书记\ns3,一,甲\ns3,二,乙\n", "row 3, column A"),
    ("again.csv", "case_id,organization,secretary\nschool-01,一,甲\n", "already open"),
    ("gbk.csv", None, "not UTF-8"),
    ("empty.csv", "", "empty"),
    ("fake.xlsx", "not a workbook", "not a readable XLSX"),
    ("cell.csv", "编号,党组织,书记\ns3,,甲\n", "row 2, column B"),
    ("group.csv", "编号,党组织,书记,指导组\ns3,一,甲,nogroup\n", "unknown guidance group"),
])
def test_cases_import_refuses_bad_files_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, message: str,
) -> None:
    path = workdir / name
    if content is None:
        path.write_bytes("编号,党组织,书记\ns3,第三中学党支部,王五\n".encode("gbk"))
    else:
        path.write_text(content, encoding="utf-8")
    before = counts(workdir / "reviewflow.db")
    code, _out, err = cli("cases", "import", name, capsys=capsys)
    assert code == 2, err
    assert message in err
    assert counts(workdir / "reviewflow.db") == before


def test_cases_import_refuses_a_50_mb_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = workdir / "big.csv"
    with big.open("wb") as f:
        f.write("编号,党组织,书记\n".encode())
        f.truncate(50 * 1024 * 1024)
    before = counts(workdir / "reviewflow.db")
    code, _out, err = cli("cases", "import", "big.csv", capsys=capsys)
    assert code == 2
    assert "MB" in err
    assert counts(workdir / "reviewflow.db") == before


def test_fire_refuses_bad_input_with_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = workdir / "reviewflow.db"
    before = counts(db)
    bad = [
        ["fire", "school-01", "no_such_event", "--actor", "bureau"],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--data", "{not json"],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--data", "[1, 2]"],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--data",
         "[" * 100_000 + "]" * 100_000],
        ["fire", "school-01", "finish_research", "--actor", "nobody"],
        ["fire", "school-01", "finish_research", "--actor", "x", "--role", "no_such_role"],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--role", "secretary"],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--data-file", "nope.json"],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--data", "{}",
         "--data-file", "report.json"],
        ["fire", "no-such-case", "finish_research", "--actor", "bureau", "--data",
         '{"problems": ["x"]}'],
        ["fire", "school-01", "finish_research", "--actor", "bureau", "--data", '{"problems": []}'],
        ["--now", "2016-13-45", "fire", "school-01", "finish_research", "--actor", "bureau"],
        ["fire", "school-01"],
    ]
    for args in bad:
        code, _out, err = cli(*args, capsys=capsys)
        assert code == 2, (args, err)
        assert "Traceback" not in err
    assert counts(db) == before


def test_a_device_as_data_file_or_campaign_file_is_refused_unread(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = counts(workdir / "reviewflow.db")
    (workdir / "zero.json").symlink_to("/dev/zero")  # before the fix: read without end
    code, _out, err = cli("fire", "school-01", "finish_research", "--actor", "bureau",
                          "--data-file", "zero.json", capsys=capsys)
    assert code == 2
    assert "--data-file zero.json: is not a regular file" in err
    (workdir / "zero.toml").symlink_to("/dev/zero")
    code, _out, err = cli("--config", "zero.toml", "status", capsys=capsys)
    assert code == 2
    assert "campaign file zero.toml: is not a regular file" in err
    (workdir / "huge.toml").write_text("db = " + "9" * 5000 + "\n", encoding="utf-8")
    code, _out, err = cli("--config", "huge.toml", "status", capsys=capsys)
    assert code == 2
    assert "Traceback" not in err
    assert counts(workdir / "reviewflow.db") == before


def test_a_line_break_in_a_name_cannot_start_a_csv_row() -> None:
    import csv
    import io
    import re

    from reviewflow.cli._results import _csv_text
    from reviewflow.export.results import ResultRow
    from reviewflow.export.xlsx import FORMULA_START

    names = ["第一中学\r=HYPERLINK(\"http://x\")", "\n@SUM(A1)", "二中\r\n+1"]
    text = _csv_text([ResultRow(case_id=f"c{i}", organization=name, secretary="张三",
                                stage="closed") for i, name in enumerate(names)])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(names)
    assert [r[2] for r in rows[1:]] == ["第一中学\r'=HYPERLINK(\"http://x\")", "\n'@SUM(A1)",
                                        "二中\r\n'+1"]
    assert not [line for line in re.split(r"\r\n|\r|\n", text) if line.startswith(FORMULA_START)]


def test_fire_with_a_wrong_meeting_date_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reviewflow.testing import drive_to  # noqa: F401  # the helper exists for hosts, not needed here

    code, _o, err = cli("--now", NOW, "fire", "school-01", "finish_research", "--actor", "bureau",
                        "--data", '{"problems": ["x"]}', capsys=capsys)
    assert code == 0, err
    assert cli("--now", NOW, "fire", "school-01", "submit_report", "--actor", "sec-school-01",
               "--data-file", "report.json", capsys=capsys)[0] == 0
    for who, role in (("li", "guidance_group"), ("bureau", "organizer")):
        assert cli("--now", NOW, "fire", "school-01", "sign_off", "--actor", who, "--role", role,
                   capsys=capsys)[0] == 0
    code, _o, err = cli("--now", "2016-01-12T09:00+08:00", "fire", "school-01", "hold_meeting",
                        "--actor", "bureau", "--data",
                        '{"date": "2016-01-32", "attendance": {"party_members": 3}}', capsys=capsys)
    assert code == 2
    assert "invalid_data" in err


def test_read_commands_refuse_bad_input(workdir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("show", "no-such-case", capsys=capsys)[0] == 2
    assert cli("allowed", "school-01", "--actor", "nobody", capsys=capsys)[0] == 2
    assert cli("status", "--soon", "-1", capsys=capsys)[0] == 2
    assert cli("--campaign", "1999", "status", capsys=capsys)[0] == 2
    assert cli("results", "--format", "pdf", capsys=capsys)[0] == 2
    assert cli("publish", "--out", "no/such/dir", capsys=capsys)[0] == 2
    assert cli("tick", "--limit", "0", capsys=capsys)[0] == 2
    assert cli("diagram", "--format", "png", capsys=capsys)[0] == 2
    assert cli("demo", "--branches", "0", capsys=capsys)[0] == 2
    assert cli("ballots", "issue", "school-01", capsys=capsys)[0] == 2  # --count is required
    assert cli("no-such-command", capsys=capsys)[0] == 2
    # a database that does not exist is never created by a read
    missing = tmp_path / "elsewhere" / "none.db"
    for args in (["status"], ["verify"], ["show", "x"], ["db", "upgrade"]):
        code, _out, err = cli("--db", str(missing), *args, capsys=capsys)
        assert code == 2, (args, err)
    assert not missing.exists()
    # a broken campaign file
    (workdir / "broken.toml").write_text("db = 1\n", encoding="utf-8")
    assert cli("--config", "broken.toml", "status", capsys=capsys)[0] == 2
    (workdir / "unknown.toml").write_text("database = 'x'\n", encoding="utf-8")
    assert cli("--config", "unknown.toml", "status", capsys=capsys)[0] == 2
    assert not (workdir / "notice.md").exists()


def test_verify_exits_1_and_names_a_tampered_event(workdir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(workdir / "reviewflow.db") as conn:
        conn.execute("update rf_events set actor_id = 'mallory' where case_id = 'school-02'")
    code, out, _err = cli("verify", capsys=capsys)
    assert code == 1
    assert "school-02" in out


def test_svg_without_graphviz_is_a_clear_error(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(workdir))  # no dot program here
    code, _out, err = cli("diagram", "--format", "svg", capsys=capsys)
    assert code == 2
    assert "Graphviz" in err


def test_extend_as_a_subprocess(workdir: Path) -> None:
    env = {"REVIEWFLOW_NOW": NOW}
    refused = run("extend", "school-01", "drafting", "--until", "2016-01-22T18:00+08:00",
                  "--reason", "外出学习", "--actor", "sec-school-01", cwd=workdir, env=env)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    bad = run("extend", "school-01", "drafting", "--until", "next week", "--reason", "x",
              "--actor", "bureau", cwd=workdir, env=env)
    assert bad.returncode == 2
    done = run("extend", "school-01", "drafting", "--until", "2016-01-22T18:00+08:00",
               "--reason", "外出学习", "--actor", "bureau", cwd=workdir, env=env)
    assert done.returncode == 0, done.stderr
    shown = run("show", "school-01", "--json", cwd=workdir, env=env)
    assert "2016-01-22T18:00:00+08:00" in shown.stdout
