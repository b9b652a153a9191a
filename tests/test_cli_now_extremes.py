"""``--now`` (and ``extend --until``) at the edges of time: a clear error (exit 2) or a
working command, never a crash.

``--now 0001-01-01T00:00+08:00`` made ``status`` fail with an internal error
(``OverflowError``, exit 3). A time outside the years a policy's dates may fall in
(``reviewflow.deadlines.YEARS``) is now refused with an ``InputError`` when it is read.
A property test feeds ``status``, ``show``, ``tick``, ``allowed`` and ``fire`` extreme,
naive and malformed times; each exits 0, 1 or 2, and a refused one writes nothing.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewflow.cli import main
from reviewflow.policy_file import DEFAULT_POLICY_FILE

FIRE = ["fire", "s1", "finish_research", "--actor", "bureau", "--role", "organizer",
        "--data", '{"problems": ["p"]}']
COMMANDS = [["status"], ["show", "s1"], ["tick"], ["allowed", "s1", "--actor", "bureau",
                                                   "--role", "organizer"], FIRE]
EXTREMES = ["0001-01-01T00:00+08:00", "0001-01-01", "9999-12-31", "9999-12-31T23:59:59-12:00",
            "9999-12-31T23:59:59.999999+14:00", "1900-01-01T00:00", "1949-12-31T23:59:59Z",
            "2200-01-01T00:00+08:00", "2199-12-31T12:00+08:00", "1950-06-01T00:00Z",
            "2016-01-05T09:00", "garbage", "2016-13-45", "2016-01-05T09:00+25:00", "-0001-01-01",
            "99999-01-01", "1e10", "P1D", "\x00", "2016-01-05T09:00+08:00\n", "0000-00-00"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "b.csv").write_text("编号,党组织,书记\ns1,一中,张三\n", encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", "2016-01-05T09:00+08:00", "cases", "import", "b.csv"]) == 0
    return tmp_path


def _copy(source: Path, target: Path) -> None:
    """Copy a SQLite database whole (its write-ahead log included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from rf_events").fetchone()[0])


@pytest.mark.parametrize("now", ["0001-01-01T00:00+08:00", "9999-12-31",
                                 "9999-12-31T23:59:59-12:00"])
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_time_out_of_range_is_refused_with_exit_2(workdir: Path, now: str, command: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = _events(workdir / "reviewflow.db")
    assert main(["--lang", "en", "--now", now, *command]) == 2
    assert "out of range" in capsys.readouterr().err
    assert _events(workdir / "reviewflow.db") == before


def test_any_now_exits_0_1_or_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = workdir / "reviewflow.db"
    _copy(db, workdir / "clean.db")
    assert _events(workdir / "clean.db") == 1

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.sampled_from(EXTREMES), st.datetimes().map(lambda d: d.isoformat()),
                     st.text(max_size=30)),
           st.sampled_from(COMMANDS))
    def fuzz(now: str, command: list[str]) -> None:
        _copy(workdir / "clean.db", db)
        code = main(["--lang", "en", "--now", now, *command])
        err = capsys.readouterr().err
        assert code in (0, 1, 2), f"--now {now!r} {command[0]}: exit {code}: {err}"
        if code != 0:
            assert _events(db) == 1

    fuzz()


@pytest.mark.parametrize("until", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00+08:00"])
def test_an_extension_out_of_range_is_refused_with_exit_2(
        workdir: Path, until: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _events(workdir / "reviewflow.db")
    assert main(["--lang", "en", "--now", "2016-01-05T09:00+08:00", "extend", "s1", "drafting",
                 "--until", until, "--reason", "x", "--actor", "bureau", "--role",
                 "organizer"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert _events(workdir / "reviewflow.db") == before
