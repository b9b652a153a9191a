"""Anchors and audit keys: the anchor file's format, its checks, the key, the notice.

The tampering table itself (real SQL edits on SQLite, PostgreSQL and MySQL) is in
tests/reliability/test_anchoring.py; this file covers the pieces, on the memory store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import reviewflow as rf
from reviewflow import anchoring
from reviewflow.export.notice import notice_html, notice_markdown
from reviewflow.export.results import collect_results
from reviewflow.store.memory import MemoryStore
from reviewflow.testing import Cast, drive_to, seed_campaign

KEY = "a key of more than sixteen characters"


def _closed(n: int = 2, *, key: str | None = None) -> rf.Campaign:
    campaign, clock = seed_campaign()
    if key is not None:
        campaign = rf.Campaign(campaign.policy, clock=clock, audit_key=key)
    cast = Cast.default()
    for i in range(n):
        campaign.open_case(f"s{i}", organization=f"第{i}中学党支部", secretary=cast.secretary(f"s{i}"))
        drive_to(campaign, f"s{i}", rf.Stage.CLOSED, cast=cast, clock=clock)
    return campaign


def test_an_anchor_reads_back_from_its_text_and_covers_every_case() -> None:
    campaign = _closed()
    anchor = campaign.anchor()
    again = rf.Anchor.from_text(anchor.to_text())
    assert again == anchor
    assert (anchor.cases, anchor.events, anchor.refusals) == (2, 22, 0)
    assert [c for c, _v, _h in anchor.heads] == ["s0", "s1"]
    assert anchor.heads[0][2] == campaign.case("s0").last_hash
    assert anchor.mac is None
    assert anchor.policy_digest is not None
    assert str(anchor).startswith(f"anchor {anchor.digest}")


@pytest.mark.parametrize(("edit", "says"), [
    (lambda t: t.replace(" 11 ", " 10 ", 1), "digest does not match"),
    (lambda t: t.replace("case \"s1\"", "case \"s9\"", 1), "digest does not match"),
    (lambda t: t.split("digest ")[0], "cut short"),
    (lambda t: "not an anchor\n" + t, "line 1"),
    (lambda t: t.replace("refusals 0", "refusals x", 1), "line 4"),
    (lambda t: t + "extra line\n", "unexpected line"),
])
def test_an_edited_or_damaged_anchor_file_is_refused_with_where(edit: object, says: str) -> None:
    text = _closed().anchor().to_text()
    with pytest.raises(rf.InputError, match=says):
        rf.Anchor.from_text(edit(text), "a.anchor")  # type: ignore[operator]


def test_read_anchor_reads_a_file_and_refuses_a_directory(tmp_path: Path) -> None:
    anchor = _closed().anchor()
    path = tmp_path / "a.anchor"
    path.write_text(anchor.to_text(), encoding="utf-8")
    assert rf.read_anchor(path) == anchor
    with pytest.raises(rf.InputError, match="directory"):
        rf.read_anchor(tmp_path)


def test_the_record_extends_its_anchor_and_a_tail_deletion_is_found_on_memory() -> None:
    campaign = _closed()
    anchor = campaign.anchor(save=False)
    assert campaign.verify([anchor]).ok
    # Drop the last event of s0 and set its snapshot back, inside the memory store.
    store = campaign.store
    assert isinstance(store, MemoryStore)
    data = store._campaigns[campaign.id]
    history = data.history["s0"]
    history.pop()
    from reviewflow import _replay
    from reviewflow.store import memory

    # the row set back as the remaining events say (verify replays them: a row left
    # ahead of its events is found without an anchor)
    state = _replay.replay(store.history(campaign.id, "s0"))
    case = store.get(campaign.id, "s0")
    assert case is not None
    case.stage, case.version, case.last_hash = rf.Stage(state.stage), state.version, state.last_hash
    case.data = state.data
    data.cases["s0"] = memory._snapshot(case)
    assert campaign.verify().ok  # nothing else can see it
    report = campaign.verify([anchor])
    assert not report.ok
    assert "events were deleted" in str(report)


def test_an_anchor_of_another_campaign_is_reported() -> None:
    anchor = _closed().anchor(save=False)
    other, _clock = seed_campaign(2017)
    report = other.verify([anchor])
    assert not report.ok
    assert "is of campaign '2016', not '2017'" in str(report)


def test_anchors_kept_in_the_store_are_checked_by_verify_without_arguments() -> None:
    campaign = _closed()
    campaign.anchor()
    report = campaign.verify()
    assert report.ok
    assert len(report.anchors) == 1
    assert not any("no anchor" in n for n in report.notes)
    assert any("MACs not checked" in n for n in report.notes)
    assert "note: MACs not checked" in str(report)


def test_with_a_key_every_event_and_the_anchor_carry_a_mac() -> None:
    campaign = _closed(key=KEY)
    store = campaign.store
    assert isinstance(store, MemoryStore)
    assert sum(len(m) for m in store.event_macs[campaign.id].values()) == 22
    anchor = campaign.anchor()
    assert anchor.mac is not None
    assert anchor.check_mac(KEY.encode())
    assert not anchor.check_mac(b"another key of sixteen bytes")
    report = campaign.verify([anchor])
    assert report.ok
    assert report.notes == ()


def attrs_evolve_mac(anchor: rf.Anchor, campaign: rf.Campaign) -> rf.Anchor:
    """The anchor as someone with another key would sign it."""
    import attrs

    from reviewflow._macs import anchor_mac

    assert campaign._engine.audit_key is not None
    return attrs.evolve(anchor, mac=anchor_mac(campaign._engine.audit_key, anchor.digest))


def test_an_anchor_signed_with_another_key_is_reported() -> None:
    campaign = _closed(key=KEY)
    anchor = campaign.anchor(save=False)
    other = rf.Campaign(campaign.policy, clock=campaign.clock, store=MemoryStore(),
                        audit_key="another key, also long enough")
    report = campaign.verify([attrs_evolve_mac(anchor, other)])
    assert not report.ok
    assert "MAC does not match the audit key" in str(report)


def test_a_record_sealed_without_the_key_fails_verify_with_the_key() -> None:
    plain = _closed()
    keyed = rf.Campaign(plain.policy, clock=plain.clock, store=plain.store, audit_key=KEY)
    report = keyed.verify()
    assert not report.ok
    assert "has no MAC" in str(report)


@pytest.mark.parametrize("bad", ["short", b"", 12345])
def test_an_unusable_audit_key_is_refused(bad: object) -> None:
    with pytest.raises(rf.InputError, match="audit"):
        rf.Campaign(rf.Policy.default(year=2016), audit_key=bad)  # type: ignore[arg-type]


def test_one_store_one_key() -> None:
    store = MemoryStore()
    rf.Campaign(rf.Policy.default(year=2016), store=store, audit_key=KEY)
    with pytest.raises(rf.InputError, match="another audit key"):
        rf.Campaign(rf.Policy.default(year=2016), store=store, audit_key=KEY + "!")


def test_the_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert rf.audit_key_from_env({}) is None
    assert rf.audit_key_from_env({anchoring.AUDIT_KEY_ENV: KEY}) == KEY.encode()
    path = tmp_path / "audit.key"
    path.write_bytes(KEY.encode() + b"\n")
    assert rf.audit_key_from_env({anchoring.AUDIT_KEY_FILE_ENV: str(path)}) == KEY.encode()
    with pytest.raises(rf.InputError, match="both"):
        rf.audit_key_from_env({anchoring.AUDIT_KEY_ENV: KEY,
                               anchoring.AUDIT_KEY_FILE_ENV: str(path)})
    with pytest.raises(rf.InputError, match="no such file"):
        rf.audit_key_from_env({anchoring.AUDIT_KEY_FILE_ENV: str(tmp_path / "missing")})


def test_refusals_are_counted_and_digested_in_the_anchor() -> None:
    campaign = _closed()
    with pytest.raises(rf.TransitionRefused):
        campaign.fire("s0", "finish_research", actor=Cast.default().organizer, problems=["x"])
    anchor = campaign.anchor(save=False)
    assert anchor.refusals == 1
    store = campaign.store
    assert isinstance(store, MemoryStore)
    store._campaigns[campaign.id].refusals.clear()
    report = campaign.verify([anchor])
    assert "refusals were deleted" in str(report)


def test_the_notice_prints_the_anchor_digest_and_date() -> None:
    campaign = _closed()
    campaign.publish(actor=Cast.default().organizer, scope="全局党员干部")
    anchor = campaign.anchor()
    rows = [r for r in collect_results(campaign) if r.score is not None]
    md = notice_markdown(rows, anchor=anchor)
    page = notice_html(rows, anchor=anchor)
    for text in (md, page):
        assert anchor.digest in text
        assert anchor.date in text
    assert anchor.digest not in notice_markdown(rows)


def test_an_amendment_after_an_anchor_extends_it_and_a_rewritten_seal_does_not(
    tmp_path: Path,
) -> None:
    from reviewflow.policy_file import DEFAULT_POLICY_FILE, load_policy

    campaign = _closed()
    campaign.anchor()
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    path = tmp_path / "other.toml"
    path.write_text(text.replace("# [scoring]\n# places = 2", "[scoring]\nplaces = 1"),
                    encoding="utf-8")
    cast = Cast.default()
    campaign.amend_policy(load_policy(path), reason="局党组会议决定保留一位小数",
                          actor=cast.organizer)
    assert campaign.verify().ok, str(campaign.verify())  # the amendment extends the anchor
    campaign.anchor()
    # Rewrite the policy chain as someone with write access could: drop the amendment.
    store = campaign.store
    assert isinstance(store, MemoryStore)
    store._campaigns[campaign.id].chain.pop()
    report = campaign.verify()
    assert not report.ok
    assert "no longer extends the one anchored" in str(report)
