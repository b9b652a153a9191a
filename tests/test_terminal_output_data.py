"""What the CLI prints to a terminal never carries a raw control or format character.

Reasons, comments, policy names, actor ids and command arguments can hold ESC
sequences (clear the screen, set the window title, hide text) or direction overrides.
``show``, ``status``, ``allowed``, the refusal and error messages (the "unknown actor"
hint included) and click's usage errors print them escaped (``\\x1b``), through one
sanitiser (``reviewflow.cli._output.terminal_text``).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pendulum
import pytest

import reviewflow as rf
from reviewflow.cli import main
from reviewflow.policy_file import DEFAULT_POLICY_FILE, load_policy
from reviewflow.testing import Cast, passing_report

CAST = Cast.default()
NOW = "2016-01-05T09:00+08:00"
CLEAR = "\x1b[2J\x1b]0;owned\x07"  # clear the screen, set the window title
HIDE = "\u202e\x9b31m"  # a right-to-left override, a C1 control sequence introducer


def raw_controls(text: str) -> list[str]:
    """Return the control, format and separator characters of ``text`` (line breaks aside)."""
    return [ch for ch in text if ch != "\n"
            and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A campaign whose policy name, history reasons and comments hold terminal escapes."""
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8").replace(
        'name = "2016年度党组织书记抓党建工作述职评议考核"',
        'name = "2016\\u001b[2J\\u202e年度"', 1)
    (tmp_path / "policy.toml").write_text(text, encoding="utf-8")
    (tmp_path / "branches.csv").write_text("编号,党组织,书记\ns1,一中,张三\n", encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", NOW, "cases", "import", "branches.csv"]) == 0
    policy = load_policy(tmp_path / "policy.toml")
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 5, 9, tz="Asia/Shanghai"))
    campaign = rf.Campaign(policy, store=f"sqlite:///{tmp_path / 'reviewflow.db'}",
                           campaign_id="2016", clock=clock)
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=[f"问题{CLEAR}"])
    campaign.fire("s1", "submit_report", actor=campaign.case("s1").secretary,
                  report=passing_report())
    campaign.fire("s1", "return_for_revision", actor=CAST.organizer, reason=f"退回{CLEAR}{HIDE}")
    with pytest.raises(rf.TransitionRefused):
        campaign.fire("s1", "hold_meeting", actor=CAST.organizer, date=CLEAR)
    campaign.store.close()
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--lang", "en", "--now", NOW, *args])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("args", [
    ("show", "s1"),
    ("status",),
    ("allowed", "s1", "--actor", "bureau", "--role", "organizer"),
    ("fire", "s1", "sign_off", "--actor", "bureau", "--role", "organizer",
     "--data", json.dumps({"comment": CLEAR})),
    ("fire", "s1", "hold_meeting", "--actor", "bureau", "--role", "organizer",
     "--data", json.dumps({"date": CLEAR + HIDE})),
    ("fire", "s1", "finish_research", "--actor", f"x{CLEAR}"),
    ("fire", "s1", "finish_research", "--actor", f"x{HIDE}"),
    ("fire", f"s1{CLEAR}", "finish_research", "--actor", "bureau", "--role", "organizer"),
    ("fire", "s1", f"finish{CLEAR}", "--actor", "bureau"),
    (f"sh{CLEAR}ow",),
    ("show", "s1", f"--js{HIDE}on"),
])
def test_the_cli_prints_no_raw_control_character(workdir: Path, args: tuple[str, ...],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = _run(capsys, *args)
    assert code in (0, 1, 2), printed
    assert raw_controls(printed) == [], printed


def test_show_prints_the_escaped_reason(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = _run(capsys, "show", "s1")
    assert code == 0
    assert "\\x1b[2J" in printed  # shown, escaped
    code, printed = _run(capsys, "show", "s1", "--json")
    record = json.loads(printed)["history"][-1]
    assert record["reason"] == f"退回{CLEAR}{HIDE}"  # the JSON carries the same text
