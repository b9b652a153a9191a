"""The CLI's `anchor` and `verify --anchor`: real processes and a real SQLite file, edited
with plain SQL the way someone who can write the database would."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from reviewflow.cli import main
from reviewflow.policy_file import DEFAULT_POLICY_FILE

NOW = "2016-01-05T09:00+08:00"
BRANCHES = "编号,党组织,书记\nschool-01,第一中学党支部,张三\nschool-02,第二小学党支部,李四\n"
KEY = "the bureau's audit key, kept outside the database"


def run(*args: str, cwd: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m reviewflow.cli ARGS`` in ``cwd`` (with the audit key, if given)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_AUDIT_KEY",
                        "REVIEWFLOW_AUDIT_KEY_FILE")}
    env.update(REVIEWFLOW_LANG="en", COLUMNS="200")
    if key is not None:
        env["REVIEWFLOW_AUDIT_KEY"] = key
    return subprocess.run([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A campaign of two cases on SQLite; school-01 has finished its research."""
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN",
                 "REVIEWFLOW_AUDIT_KEY", "REVIEWFLOW_AUDIT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text(BRANCHES, encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", NOW, "cases", "import", "branches.csv"]) == 0
    return tmp_path


def _db(workdir: Path) -> sqlite3.Connection:
    return sqlite3.connect(workdir / "reviewflow.db")


def _research(workdir: Path, key: str | None = None) -> None:
    done = run("--now", NOW, "fire", "school-01", "finish_research", "--actor", "bureau",
               "--data", '{"problems": ["组织生活不规范"]}', cwd=workdir, key=key)
    assert done.returncode == 0, done.stderr


def _row(workdir: Path) -> tuple[str, int, str, str]:
    with _db(workdir) as conn:
        row = conn.execute("SELECT stage, version, last_hash, state FROM rf_cases "
                           "WHERE case_id = 'school-01'").fetchone()
    return (str(row[0]), int(row[1]), str(row[2]), str(row[3]))


def _set_back(workdir: Path, row: tuple[str, int, str, str], *, anchors: bool) -> None:
    """Delete school-01's newest events and put its saved row back (and the kept anchors)."""
    with _db(workdir) as conn:
        conn.execute("DELETE FROM rf_events WHERE case_id = 'school-01' AND seq > ?", (row[1],))
        conn.execute("UPDATE rf_cases SET stage = ?, version = ?, last_hash = ?, state = ? "
                     "WHERE case_id = 'school-01'", row)
        if anchors:
            conn.execute("DELETE FROM rf_anchors")


def test_anchor_writes_a_file_and_verify_checks_the_record_against_it(workdir: Path) -> None:
    saved = _row(workdir)
    _research(workdir)
    made = run("anchor", "--out", "2016-01-05.anchor", cwd=workdir)
    assert made.returncode == 0, made.stderr
    text = (workdir / "2016-01-05.anchor").read_text(encoding="utf-8")
    assert text.startswith("reviewflow anchor 1\n")
    digest = next(line.split()[1] for line in text.splitlines() if line.startswith("digest "))
    assert digest in made.stdout
    assert "2 cases, 3 events, 0 refusals" in made.stdout
    with _db(workdir) as conn:
        assert conn.execute("SELECT digest FROM rf_anchors").fetchall() == [(digest,)]
    good = run("verify", "--anchor", "2016-01-05.anchor", cwd=workdir)
    assert good.returncode == 0, good.stdout
    assert "extends 1 anchor" in good.stdout
    assert digest in good.stdout  # to compare with the notice
    assert "MACs not checked" in good.stderr
    # The newest event deleted, the case row set back and the kept anchor deleted too.
    _set_back(workdir, saved, anchors=True)
    blind = run("verify", cwd=workdir)
    assert blind.returncode == 0  # without the file, nothing shows it
    assert "no anchor checked" in blind.stderr
    caught = run("verify", "--anchor", "2016-01-05.anchor", cwd=workdir)
    assert caught.returncode == 1
    assert "school-01" in caught.stdout
    assert "events were deleted" in caught.stdout


def test_the_anchor_kept_in_the_database_is_checked_by_plain_verify(workdir: Path) -> None:
    saved = _row(workdir)
    _research(workdir)
    assert run("anchor", cwd=workdir).returncode == 0
    _set_back(workdir, saved, anchors=False)
    caught = run("verify", "--json", cwd=workdir)
    assert caught.returncode == 1
    report = json.loads(caught.stdout)
    assert report["ok"] is False
    assert len(report["anchors"]) == 1
    assert report["problems"][0]["case_id"] == "school-01"


def test_with_the_audit_key_the_anchor_has_a_mac_and_verify_checks_every_event(
        workdir: Path) -> None:
    # The campaign was opened without a key: its first events have no MAC.
    missing = run("verify", cwd=workdir, key=KEY)
    assert missing.returncode == 1
    assert "has no MAC" in missing.stdout
    _research(workdir, key=KEY)
    made = run("anchor", "--json", cwd=workdir, key=KEY)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["mac"] is True
    with _db(workdir) as conn:
        macs = conn.execute("SELECT case_id, seq FROM rf_event_macs").fetchall()
    assert macs == [("school-01", 2)]


def test_anchor_and_verify_refuse_bad_files_with_exit_2(workdir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anchor", "--out", "a.anchor"]) == 0
    text = (workdir / "a.anchor").read_text(encoding="utf-8")
    (workdir / "edited.anchor").write_text(text.replace(" 1 ", " 2 ", 1), encoding="utf-8")
    capsys.readouterr()
    assert main(["--lang", "en", "verify", "--anchor", "edited.anchor"]) == 2
    assert "digest does not match" in capsys.readouterr().err
    assert main(["--lang", "en", "verify", "--anchor", "missing.anchor"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--lang", "en", "anchor", "--out", "no/such/dir/a.anchor"]) == 2


def test_a_short_audit_key_in_the_environment_is_refused(workdir: Path) -> None:
    done = run("verify", cwd=workdir, key="short")
    assert done.returncode == 2
    assert "audit key" in done.stderr
    assert "Traceback" not in done.stderr
