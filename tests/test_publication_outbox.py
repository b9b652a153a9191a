"""A publication's hook is durable: a process that stops before telling
``reviewflow_results_published`` leaves it to ``dispatch_pending()``.

The crash is real: a forked process publishes on the database and dies inside the hook.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow.ballots import PaperCount
from reviewflow.model import Stage
from reviewflow.testing import Cast, HookRecorder, drive_to

CAST = Cast.default()
FORK = multiprocessing.get_context("fork")
START = pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")
VOTES = [{"good": 30}, {"good": 5, "average": 15}, {"average": 2, "poor": 8}]


def _campaign(url: str, cid: str, clock: rf.FrozenClock, **kwargs: Any) -> rf.Campaign:
    return rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=url, campaign_id=cid,
                       **kwargs)


def _evaluated(url: str, cid: str) -> rf.FrozenClock:
    """Three cases with both comments and a closed vote, ready to publish."""
    clock = rf.FrozenClock(START)
    campaign = _campaign(url, cid, clock)
    for i, counts in enumerate(VOTES):
        case_id = f"s{i}"
        campaign.open_case(case_id, organization=f"第{i}支部", secretary=CAST.secretary(case_id))
        drive_to(campaign, case_id, Stage.EVALUATION, cast=CAST, clock=clock)
        campaign.fire(case_id, "comment", actor=CAST.superior, text="工作扎实")
        campaign.fire(case_id, "comment", actor=CAST.delegate, text="成效明显")
        campaign.enter_paper_counts(case_id, PaperCount(counts=counts, issued=30),
                                    actor=CAST.organizer)
        campaign.close_vote(case_id, actor=CAST.organizer)
    campaign.store.close()
    return clock


class _DiesInTheHook:
    """A host process that stops (kill -9 alike) as the publication is being told."""

    @rf.hookimpl
    def reviewflow_results_published(self, campaign: Any, results: Any, scope: Any) -> None:
        os._exit(17)


def _publish_and_die(url: str, cid: str, clock: rf.FrozenClock) -> None:
    campaign = _campaign(url, cid, clock, plugins=[_DiesInTheHook()])
    campaign.publish(actor=CAST.organizer, scope="全局党员干部", publicity_days=5)
    os._exit(0)  # not reached: the hook ends the process


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_publication_whose_hook_did_not_run_is_told_by_dispatch_pending(db_url: str) -> None:
    cid = f"pub-{os.urandom(4).hex()}"
    clock = _evaluated(db_url, cid)
    child = FORK.Process(target=_publish_and_die, args=(db_url, cid, clock))
    child.start()
    child.join(120)
    assert child.exitcode == 17  # it died in the hook, after the publication committed
    recorder = HookRecorder()
    campaign = _campaign(db_url, cid, clock, plugins=[recorder])
    assert campaign.case("s2").data["publication"]["scope"] == "全局党员干部"
    campaign.dispatch_pending()
    told = [call for call in recorder.calls if call[0] == "reviewflow_results_published"]
    assert len(told) == 1
    results = told[0][1]["results"]
    assert told[0][1]["scope"] == "全局党员干部"
    assert [(r.case_id, r.grade.key, r.rank, r.of) for r in results] == [
        ("s0", "good", 1, 3), ("s1", "average", 2, 3), ("s2", "poor", 3, 3)]
    assert list(results[2].follow_ups) == ["talk", "rectification_list"]
    assert str(results[0].score.rounded) == campaign.case("s0").data["publication"]["rounded"]
    recorder.calls.clear()
    assert campaign.dispatch_pending() == 0  # told once, then marked
    assert not recorder.calls
    assert campaign.verify().ok
    campaign.store.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_publication_told_in_time_leaves_nothing_pending(db_url: str) -> None:
    cid = f"pub-{os.urandom(4).hex()}"
    clock = _evaluated(db_url, cid)
    recorder = HookRecorder()
    campaign = _campaign(db_url, cid, clock, plugins=[recorder])
    published = campaign.publish(actor=CAST.organizer, scope="全局党员干部")
    assert [r.case_id for r in published] == ["s0", "s1", "s2"]
    assert recorder.names().count("reviewflow_results_published") == 1
    recorder.calls.clear()
    assert campaign.dispatch_pending() == 0
    assert not recorder.calls
    campaign.store.close()
