"""Tampering, table-driven: what an attacker with write access to the database can edit,
and whether ``verify`` finds it (the API, ``verify_votes()`` for ballots, and the CLI).

Each row of :data:`TAMPERING` is one edit made straight in the store (a SQL ``UPDATE``
on SQLite, PostgreSQL and MySQL; the store's own structures in memory), after a
campaign of two cases has been driven through the vote to publication:

* ``s1`` voted with a ballot box: tokens issued, ballots cast, the vote closed;
* ``s2`` voted with typed counts.

``detect`` lists the ``(case, field)`` pairs ``verify`` must report (a field reported
as ``data.vote.good`` matches ``data.vote``); an empty ``detect`` says the edit must
NOT be reported (a control). ``new`` says that today's (before issue #17) ``verify``
missed it. To add a row, append a :class:`Tamper` to :data:`TAMPERING` (an edit is a
function of a :class:`Db`, the store's edit primitives, and the :class:`Scene`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import pytest

import reviewflow as rf
from reviewflow._engine import vote_work
from reviewflow.store.base import Store
from reviewflow.testing import Cast, drive_to

TZ = "Asia/Shanghai"
CAST = Cast.default()
BACKENDS = ("memory", "sqlite", "postgresql", "mysql")


# --------------------------------------------------------------------------- the scene


@attrs.define
class Scene:
    """The campaign the edits are made on (see the module docs)."""

    campaign: rf.Campaign
    store: Store
    kind: str
    clock: rf.FrozenClock
    #: When the scene stopped: "evaluated" (before publication) or "published".
    until: str = "published"

    def publish(self) -> None:
        self.campaign.publish(actor=CAST.organizer, scope="全局党员干部")


def build_scene(store: Store, campaign_id: str, kind: str, until: str) -> Scene:
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=store,
                           campaign_id=campaign_id)
    for cid, org in (("s1", "第一中学党支部"), ("s2", "第二中学党支部")):
        campaign.open_case(cid, organization=org, secretary=CAST.secretary(cid))
    drive_to(campaign, "s1", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    campaign.fire("s1", "comment", actor=CAST.superior, text="工作扎实")
    campaign.fire("s1", "comment", actor=CAST.delegate, text="成效明显")
    issued = campaign.issue_ballot_tokens("s1", {"party_member": 12}, actor=CAST.organizer)
    choices = ["good"] * 5 + ["fairly_good"] * 3 + ["average"] * 2 + ["poor"] * 2
    for token, choice in zip(issued, choices, strict=True):
        campaign.cast_ballot("s1", token.token, choice)
    campaign.close_vote("s1", actor=CAST.organizer)
    campaign.fire("s1", "finish_evaluation", actor=CAST.organizer)
    drive_to(campaign, "s2", rf.Stage.GROUP_TALK, cast=CAST, clock=clock)
    scene = Scene(campaign, store, kind, clock, until)
    if until == "published":
        scene.publish()
    return scene


# --------------------------------------------------------------------------- the edits


class Db:
    """An attacker's write access: edit a case row, an event, a ballot, the policy."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.store = scene.store
        self.cid = scene.campaign.id

    # -- case rows

    def edit_case(self, case_id: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``fn`` to the case row as JSON (``stage``, ``organization``, ``secretary``,
        ``data``, ...) and write it back, touching nothing else."""
        case = self.store.get(self.cid, case_id)
        assert case is not None
        doc = case.to_json()
        fn(doc)
        self.write_case(rf.Case.from_json(doc))

    def write_case(self, case: rf.Case) -> None:
        if self.scene.kind == "memory":
            from reviewflow.store import memory

            self.store._campaigns[self.cid].cases[case.case_id] = memory._snapshot(case)  # type: ignore[attr-defined]
            return
        import sqlalchemy as sa

        from reviewflow.store import _schema as s

        row = self.store._case_row(case)  # type: ignore[attr-defined]
        c = s.cases.c
        with self.store.engine.begin() as conn:  # type: ignore[attr-defined]
            done = conn.execute(sa.update(s.cases).where(c.campaign_id == self.cid)
                                .where(c.case_id == case.case_id)
                                .values(stage=row["stage"], state=row["state"])).rowcount
        assert done == 1

    # -- events

    def edit_event(self, case_id: str, event: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``fn`` to the data of the case's last ``event`` record; no re-chaining."""
        history = self.store.history(self.cid, case_id)
        record = next(r for r in reversed(history) if r.event == event)
        data = json.loads(json.dumps(dict(record.data)))
        fn(data)
        if self.scene.kind == "memory":
            from reviewflow.store import memory

            kept = self.store._campaigns[self.cid].history[case_id]  # type: ignore[attr-defined]
            kept[record.seq - 1] = memory._kept(record._replace(data=data))
            return
        import sqlalchemy as sa

        from reviewflow.model import canonical_data
        from reviewflow.store import _schema as s

        e = s.events.c
        with self.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.update(s.events).where(e.campaign_id == self.cid)
                         .where(e.case_id == case_id).where(e.seq == record.seq)
                         .values(data=canonical_data(data)))

    # -- ballots

    def edit_ballot_choices(self, case_id: str, round_no: int,
                            fn: Callable[[str | None], str | None]) -> None:
        """Change every stored ballot's choice of a round with ``fn``."""
        if self.scene.kind == "memory":
            campaign = self.scene.campaign
            ballots = campaign.store.ballot_box(campaign.id)._ballots[(case_id, round_no)]  # type: ignore[attr-defined]
            for bid, b in list(ballots.items()):
                ballots[bid] = attrs.evolve(b, choice=fn(b.choice))
            return
        import sqlalchemy as sa

        from reviewflow.store import _schema as s

        b = s.ballots.c
        with self.store.engine.begin() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(sa.select(b.ballot_id, b.choice).where(b.campaign_id == self.cid)
                                .where(b.case_id == case_id).where(b.round == round_no)).all()
            for ballot_id, choice in rows:
                conn.execute(sa.update(s.ballots).where(b.campaign_id == self.cid)
                             .where(b.ballot_id == ballot_id).values(choice=fn(choice)))

    # -- the campaign's policy

    def edit_policy(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``fn`` to the policy JSON the database keeps for the campaign."""
        doc = json.loads(self.store.campaign_policy(self.cid) or "{}")
        fn(doc)
        text = json.dumps(doc, ensure_ascii=False)
        if self.scene.kind == "memory":
            self.store._campaigns[self.cid].policy = text  # type: ignore[attr-defined]
            return
        import sqlalchemy as sa

        from reviewflow.store import _schema as s

        with self.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.update(s.campaigns).where(s.campaigns.c.id == self.cid)
                         .values(policy=text))

    def ballots(self, case_id: str, round_no: int) -> Any:
        return self.scene.campaign.store.ballot_box(self.scene.campaign.id).ballots(case_id, round_no)


def _all_good(data: dict[str, Any]) -> None:
    data["data"]["vote"] = {"good": 12, "fairly_good": 0, "average": 0, "poor": 0}


def _swap_people(db: Db, scene: Scene) -> None:
    one, two = db.store.get(db.cid, "s1"), db.store.get(db.cid, "s2")
    assert one is not None
    assert two is not None
    one.organization, two.organization = two.organization, one.organization
    one.secretary, two.secretary = two.secretary, one.secretary
    db.write_case(one)
    db.write_case(two)


def _ballots_and_row(db: Db, scene: Scene) -> None:
    """Every ballot made 好, and the case row's round tally, digest and counts made to match
    (what a careful attacker does so that a recount against the row is clean)."""
    from reviewflow.ballots import ballots_digest, recount

    db.edit_ballot_choices("s1", 1, lambda _c: "good")
    r = vote_work.vote_round(scene.campaign._engine, "s1")
    assert r is not None
    tally = recount(r, scene.campaign.policy.scoring)

    def fix(doc: dict[str, Any]) -> None:
        round1 = doc["data"]["ballot_vote"]["rounds"][0]
        round1["tally"], round1["digest"] = tally.to_json(), ballots_digest(r)
        doc["data"]["vote_tally"] = tally.to_json()
        doc["data"]["vote"] = dict(tally.counts)

    db.edit_case("s1", fix)


def _every_option_100_points(doc: dict[str, Any]) -> None:
    for level in doc["scoring"]["scale"]:
        level["points"] = 100


def _comment_text(doc: dict[str, Any]) -> None:
    doc["data"]["comments"]["superior_secretary"]["text"] = "工作一般"


def _publication_score(doc: dict[str, Any]) -> None:
    doc["data"]["publication"]["rounded"] = "100.00"


def _event_score(data: dict[str, Any]) -> None:
    data["score"], data["rounded"] = "100", "100.00"


@attrs.frozen
class Tamper:
    """One row: an edit, when it is made, and what ``verify`` must report."""

    name: str
    edit: Callable[[Db, Scene], None]
    #: (case, field) pairs verify must report; empty: nothing may be reported.
    detect: Sequence[tuple[str, str]]
    #: Whether ``verify`` before issue #17 missed the edit.
    new: bool = True
    #: "published": edit the published campaign; "evaluated": edit before publishing,
    #: then publish (as the bureau would, not knowing).
    when: str = "published"
    backends: Sequence[str] = BACKENDS
    #: Also check ``verify_votes()`` (ballot rows).
    votes: bool = False
    #: Whether results, publication and the exports still show what was sealed (False:
    #: the record itself is broken, so results are refused until it is repaired).
    shown: bool = True


TAMPERING: list[Tamper] = [
    Tamper("nothing edited", lambda db, sc: None, detect=(), new=False),
    Tamper("vote counts in the case row",
           lambda db, sc: db.edit_case("s2", _all_good), detect=[("s2", "data.vote")]),
    Tamper("vote counts in the case row before publication",
           lambda db, sc: db.edit_case("s2", _all_good), detect=[("s2", "data.vote")],
           when="evaluated"),
    Tamper("secretaries and organisations of two cases swapped", _swap_people,
           detect=[("s1", "organization"), ("s1", "secretary"), ("s2", "organization"),
                   ("s2", "secretary")]),
    Tamper("a comment's text in the case row",
           lambda db, sc: db.edit_case("s1", _comment_text),
           detect=[("s1", "data.comments.superior_secretary.text")]),
    Tamper("a ballot changed after closing",
           lambda db, sc: db.edit_ballot_choices("s1", 1,
                                                 lambda c: "good" if c == "poor" else c),
           detect=[("s1", "ballots.round1")], votes=True),
    Tamper("ballots, the round's tally and digest in the case row changed together",
           _ballots_and_row,
           detect=[("s1", "ballots.round1"), ("s1", "data.ballot_vote"), ("s1", "data.vote")],
           votes=True),
    Tamper("the policy kept in the database (every option 100 points)",
           lambda db, sc: db.edit_policy(_every_option_100_points), detect=[("", "policy")]),
    Tamper("the published score in the case row",
           lambda db, sc: db.edit_case("s1", _publication_score),
           detect=[("s1", "data.publication.rounded")], new=False),
    Tamper("a score in an event, not re-chained",
           lambda db, sc: db.edit_event("s2", "finish_evaluation", _event_score),
           detect=[("s2", "")], new=False, shown=False),
]


# --------------------------------------------------------------------------- the checks


def _shown(campaign: rf.Campaign) -> dict[str, Any]:
    """What people are shown: results (score, grade, rank) and the export rows."""
    from reviewflow.export.results import collect_results

    return {
        "results": {r.case_id: (str(r.score.value), str(r.score.rounded), r.grade.key, r.rank,
                                dict(r.score.counts)) for r in campaign.results()},
        "rows": [(r.case_id, r.organization, r.secretary, str(r.rounded), r.grade, r.rank,
                  dict(r.counts)) for r in collect_results(campaign)],
    }


def _reported(problems: Sequence[Any]) -> set[tuple[str, str]]:
    return {(p.case_id, getattr(p, "field", None) or "") for p in problems}


def _covers(reported: set[tuple[str, str]], want: tuple[str, str]) -> bool:
    case, field = want
    return any(c == case and (f == field or f.startswith(field + ".") or not field)
               for c, f in reported)


def _cli_verify(store: Store, campaign_id: str, tmp_path: Path) -> tuple[int, list[dict[str, Any]]]:
    url = store.engine.url.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    env = {**os.environ, "REVIEWFLOW_LANG": "en"}
    proc = subprocess.run(
        [sys.executable, "-c", "from reviewflow.cli import main; raise SystemExit(main())", "--db", url,
         "--campaign", campaign_id, "verify", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    return proc.returncode, out["problems"]


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("row", TAMPERING, ids=[t.name for t in TAMPERING])
def test_tampering_is_detected(row: Tamper, kind: str, make_store: Any, new_id: Any,
                               tmp_path: Path) -> None:
    if kind not in row.backends:
        pytest.skip(f"{row.name}: does not apply to {kind}")
    store = make_store(kind)
    scene = build_scene(store, new_id("tamper"), kind,
                        "evaluated" if row.when == "evaluated" else "published")
    assert scene.campaign.verify().ok, scene.campaign.verify()
    sealed = _shown(scene.campaign)
    row.edit(Db(scene), scene)
    if row.when == "evaluated":
        scene.publish()
    if row.shown:  # what people see is what was sealed, whatever the row says
        assert _shown(scene.campaign) == sealed
        if row.when == "evaluated":
            published = scene.campaign.store.history(scene.campaign.id, "s2")[-2]
            assert published.event == "publish_results"
            assert published.data["rounded"] == sealed["results"]["s2"][1]
    else:
        with pytest.raises(rf.ReviewflowError, match="reviewflow verify"):
            scene.campaign.results()

    report = scene.campaign.verify()
    reported = _reported(report.problems)
    if not row.detect:
        assert report.ok, str(report)
    else:
        assert not report.ok
        missing = [w for w in row.detect if not _covers(reported, w)]
        assert not missing, f"not reported: {missing}; report:\n{report}"
        for p in report.problems:
            assert p.case_id in str(p)
            assert getattr(p, "field", None) is None or p.field in str(p)
    if row.votes:
        votes = scene.campaign.verify_votes()
        assert votes
        assert all("s1" in p for p in votes)
    if kind != "memory":
        code, problems = _cli_verify(store, scene.campaign.id, tmp_path)
        assert code == (1 if row.detect else 0)
        cli = {(p["case_id"], p["field"] or "") for p in problems}
        assert all(_covers(cli, w) for w in row.detect), problems
