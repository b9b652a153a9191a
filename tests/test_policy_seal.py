"""The campaign's policy is sealed on its own chain; another policy is refused; amendments
are events (API and CLI, on memory, SQLite, PostgreSQL and MySQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow import _policy_seal
from reviewflow.policy_file import DEFAULT_POLICY_FILE, load_policy
from reviewflow.testing import Cast, drive_to

TZ = "Asia/Shanghai"
CAST = Cast.default()


def _other_policy_file(tmp_path: Path) -> Path:
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    assert "# [scoring]\n# places = 2" in text
    path = tmp_path / "other.toml"
    path.write_text(text.replace("# [scoring]\n# places = 2", "[scoring]\nplaces = 1"),
                    encoding="utf-8")
    return path


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mysql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if store_kind == "memory":
        return None
    if store_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'seal.db'}"
    return str(request.getfixturevalue(f"{store_kind}_url"))


_OPENED: list[rf.Campaign] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Any:
    yield
    while _OPENED:
        _OPENED.pop().store.close()


def _open(store: Any, policy: rf.Policy, cid: str) -> rf.Campaign:
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
    campaign = rf.Campaign(policy, clock=clock, store=store, campaign_id=cid)
    if isinstance(store, str):  # a store of its own: closed after the test
        _OPENED.append(campaign)
    return campaign


def test_another_policy_is_refused_and_an_amendment_is_an_event(url: str | None,
                                                                tmp_path: Path) -> None:
    import secrets

    cid = f"seal-{secrets.token_hex(4)}"
    seed = rf.Policy.default(year=2016)
    first = _open(url, seed, cid)
    store = first.store
    first.open_case("s1", organization="一中党支部", secretary=CAST.secretary("s1"))
    chain = store.campaign_events(cid)  # type: ignore[attr-defined]
    assert [(r.seq, r.event) for r in chain] == [(1, "seal_policy")]
    assert chain[0].data["digest"] == _policy_seal.policy_digest(seed.to_json())

    other = load_policy(_other_policy_file(tmp_path))
    with pytest.raises(rf.PolicyMismatch) as info:
        _open(store, other, cid)
    assert info.value.reason == "policy_differs"
    assert info.value.fields == ("scoring.places",)
    assert "scoring.places: 2 -> 1" in str(info.value)
    assert "amend_policy" in str(info.value)
    assert len(store.campaign_events(cid)) == 1  # type: ignore[attr-defined]  # nothing changed

    with pytest.raises(rf.InputError, match="reason"):
        first.amend_policy(other, reason=" ", actor=CAST.organizer)
    with pytest.raises(rf.InputError, match="may not amend"):
        first.amend_policy(other, reason="调整", actor=CAST.superior)
    first.amend_policy(other, reason="局党组会议决定保留一位小数", actor=CAST.organizer)
    assert first.policy is other
    chain = store.campaign_events(cid)  # type: ignore[attr-defined]
    assert [(r.event, r.actor_id, r.reason) for r in chain[1:]] == [
        ("amend_policy", CAST.organizer.id, "局党组会议决定保留一位小数")]
    assert chain[1].data["fields"] == ["scoring.places"]
    assert chain[1].data["previous"] == chain[0].data["digest"]
    assert first.verify().ok
    assert _open(store, other, cid).verify().ok  # the amended policy now opens
    with pytest.raises(rf.PolicyMismatch):
        _open(store, seed, cid)  # and the first one is refused


def test_a_campaign_without_a_seal_is_sealed_on_first_open(url: str | None) -> None:
    """A database from before the campaign chain: the policy it was set up with is sealed."""
    import secrets

    cid = f"old-{secrets.token_hex(4)}"
    seed = rf.Policy.default(year=2016)
    campaign = _open(url, seed, cid)
    store = campaign.store
    campaign.open_case("s1", organization="一中党支部", secretary=CAST.secretary("s1"))
    if url is None:
        store._campaigns[cid].chain.clear()  # type: ignore[attr-defined]
    else:
        import sqlalchemy as sa

        from reviewflow.store import _schema as s

        with store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.delete(s.campaign_events)
                         .where(s.campaign_events.c.campaign_id == cid))
    assert store.campaign_events(cid) == []  # type: ignore[attr-defined]
    again = _open(store, seed, cid)
    assert [r.event for r in store.campaign_events(cid)] == ["seal_policy"]  # type: ignore[attr-defined]
    assert again.verify().ok


def _cli(tmp_path: Path, url: str, cid: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from reviewflow.cli import main; raise SystemExit(main())",
         "--lang", "en", "--db", url, "--campaign", cid, *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)


def test_the_cli_refuses_another_policy_file_and_amends(url: str | None, tmp_path: Path) -> None:
    import secrets

    if url is None:
        pytest.skip("the CLI works on a database")
    cid = f"cli-{secrets.token_hex(4)}"
    campaign = _open(url, rf.Policy.default(year=2016), cid)
    campaign.open_case("s1", organization="一中党支部", secretary=CAST.secretary("s1"))
    drive_to(campaign, "s1", rf.Stage.GROUP_TALK, cast=CAST,
             clock=campaign.clock)  # type: ignore[arg-type]
    other = _other_policy_file(tmp_path)

    refused = _cli(tmp_path, url, cid, "--policy", str(other), "results", "--format", "json")
    assert refused.returncode == 2, refused
    assert "policy_differs" in refused.stderr
    assert "scoring.places" in refused.stderr
    assert refused.stdout == ""
    kept = _cli(tmp_path, url, cid, "results", "--format", "json")
    assert kept.returncode == 0, kept.stderr
    verify = _cli(tmp_path, url, cid, "--policy", str(other), "verify", "--json")
    assert verify.returncode == 1
    assert {p["field"] for p in json.loads(verify.stdout)["problems"]} == {"policy.in_use"}

    amended = _cli(tmp_path, url, cid, "policy", "amend", str(other), "--reason", "保留一位小数",
                   "--actor", CAST.organizer.id, "--role", "organizer")
    assert amended.returncode == 0, amended.stderr
    assert "scoring.places" in amended.stdout
    assert _cli(tmp_path, url, cid, "--policy", str(other), "verify").returncode == 0
    assert _cli(tmp_path, url, cid, "verify").returncode == 0  # the database keeps the amendment
    again = _cli(tmp_path, url, cid, "--policy", str(DEFAULT_POLICY_FILE), "results")
    assert again.returncode == 2
    assert "policy_differs" in again.stderr
