"""Who the CLI lets act: listed actors always; an unlisted one with --role only for rehearsals.

The CLI authorises (the policy's permissions) but does not authenticate: it trusts
``--actor``. For an actor listed nowhere, ``--role`` declares the roles outright, which
rehearsals rely on; a campaign file that says ``unlisted_actors = "refuse"`` turns that
off, so that only actors of the campaign file, the cases' secretaries and the policy's
guidance groups act.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reviewflow.cli import main
from reviewflow.policy_file import DEFAULT_POLICY_FILE

NOW = "2016-01-05T09:00+08:00"
BRANCHES = "编号,党组织,书记\nschool-01,第一中学党支部,张三\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised campaign with one case, in the working directory."""
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN",
                 "REVIEWFLOW_DB_TIMEOUTS"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text(BRANCHES, encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", NOW, "cases", "import", "branches.csv"]) == 0
    return tmp_path


def _fire(actor: str, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--lang", "en", "--now", NOW, "fire", "school-01", "finish_research",
                 "--actor", actor, *extra, "--data", json.dumps({"problems": ["组织生活不规范"]})])
    return code, capsys.readouterr().err


def test_an_unlisted_actor_with_role_acts_only_in_a_rehearsal(
    workdir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = workdir / "reviewflow.toml"
    assert "[actors.bureau]" in config.read_text(encoding="utf-8")
    config.write_text('unlisted_actors = "refuse"\n' + config.read_text(encoding="utf-8"),
                      encoding="utf-8")
    code, err = _fire("mallory", "--role", "organizer", capsys=capsys)
    assert code == 2, err
    assert "unknown actor 'mallory'" in err
    assert 'unlisted_actors = "refuse"' in err
    code, err = _fire("bureau", capsys=capsys)  # a listed actor still acts
    assert code == 0, err


def test_a_rehearsal_still_declares_an_unlisted_actor(
    workdir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _fire("mallory", "--role", "organizer", capsys=capsys)
    assert code == 0, err  # the default, for rehearsals: documented as such


def test_a_bad_unlisted_actors_setting_is_refused(workdir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = workdir / "reviewflow.toml"
    config.write_text('unlisted_actors = "maybe"\n' + config.read_text(encoding="utf-8"),
                      encoding="utf-8")
    code, err = _fire("bureau", capsys=capsys)
    assert code == 2
    assert "unlisted_actors must be" in err
