"""What the CLI prints never carries a control sequence from the data: escapes, C1 controls
and bidirectional overrides are shown as ``\\x1b``/``\\u202e``. Exports written to a pipe
stay byte for byte; on a real terminal (a pseudo-terminal here) they are shown escaped."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reviewflow.cli import main
from reviewflow.cli._output import terminal_text
from reviewflow.policy_file import DEFAULT_POLICY_FILE

NOW = "2016-01-05T09:00+08:00"
HOSTILE = "工作扎实\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text("编号,党组织,书记\ns1,第一中学党支部,张三\n", encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", NOW, "cases", "import", "branches.csv"]) == 0
    # a free-text field of an event: the research's problems
    data = json.dumps({"problems": [HOSTILE]}, ensure_ascii=False)
    assert main(["--now", NOW, "fire", "s1", "finish_research", "--actor", "bureau", "--data", data]) == 0
    return tmp_path


def test_terminal_text_shows_every_control_character() -> None:
    shown = terminal_text(HOSTILE + "\u2028\u200b\ufeff\x00\x7f")
    assert not any(c in shown for c in (*RAW, "\u2028", "\u200b", "\ufeff", "\x00", "\x7f"))
    assert shown.startswith("工作扎实\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil")
    assert terminal_text("第一\t中学\n　党支部") == "第一\t中学\n　党支部"  # tab, line feed, U+3000 stay


def test_show_and_errors_print_control_characters_escaped(workdir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--lang", "en", "show", "s1"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in RAW)  # before the fix: the escapes went to the terminal
    assert main(["--lang", "en", "--now", NOW, "fire", "s1", "submit_report", "--actor",
                 "nobody\x1b[2J\u202e"]) == 2
    err = capsys.readouterr().err
    assert "nobody" in err
    assert not any(c in err for c in RAW)
    assert "\\x1b[2J" in err


def _run_on_a_terminal(args: list[str], cwd: Path) -> bytes:
    """Run the CLI with stdout on a pseudo-terminal; return what the terminal received."""
    leader, follower = pty.openpty()
    env = {**os.environ, "REVIEWFLOW_LANG": "en", "COLUMNS": "200", "TERM": "xterm"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=env,
                            stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(follower)
    received = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        received += chunk
    proc.wait(timeout=120)
    os.close(leader)
    return bytes(received)


def test_an_export_is_exact_on_a_pipe_and_escaped_on_a_terminal(workdir: Path) -> None:
    piped = subprocess.run([sys.executable, "-m", "reviewflow.cli", "special-report", "s1"], cwd=workdir,
                           capture_output=True, check=False, timeout=120)
    assert piped.returncode == 0
    from reviewflow.export._markdown import md_text

    assert md_text(HOSTILE).encode() in piped.stdout  # on a pipe the Markdown is exact
    shown = _run_on_a_terminal(["special-report", "s1"], workdir).decode("utf-8", "replace")
    assert "工作扎实" in shown
    assert not any(c in shown for c in RAW)
    assert "\\x1b\\[2J" in shown  # the Markdown escape of "[" stays
