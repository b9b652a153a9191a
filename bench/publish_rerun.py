"""Kill a publication with SIGKILL right after its commit, run it again: count the events.

``python -m bench.publish_rerun [--rounds 30] [--cases 30] [--db sqlite:///x.db]``

Each round is one publication (the first, then re-publications with a reason), each with
its own idempotency key: a forked child publishes and is killed (-9) by a hook as soon as
the ``publish_results`` commit is told; the parent then runs the same publication again
with the same key. Issue #17 measured 1,800 extra events over 30 such rounds before
publications took a key. This prints, as JSON, the events a round should add (one
``publish_results`` and one ``feedback`` per case) and the events found beyond that.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import signal
import tempfile
from collections import Counter
from typing import Any

import pendulum

import reviewflow as rf
from reviewflow.hooks import hookimpl
from reviewflow.testing import Cast, drive_to

CAST = Cast.default()
START = pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")


class _Kill:
    @hookimpl
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> None:
        if record.event == "publish_results":
            os.kill(os.getpid(), signal.SIGKILL)


def _campaign(url: str, cid: str, at: pendulum.DateTime,
              plugins: tuple[object, ...] = ()) -> rf.Campaign:
    return rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(at), store=url,
                       campaign_id=cid, plugins=plugins)


def _publish(url: str, cid: str, n: int, plugins: tuple[object, ...] = ()) -> None:
    campaign = _campaign(url, cid, START.add(days=30 + 2 * n), plugins)
    campaign.publish(actor=CAST.organizer, scope="全局", idempotency_key=f"round-{n}",
                     reason=f"第{n}次" if n else None)


def _child(url: str, cid: str, n: int) -> None:
    _publish(url, cid, n, (_Kill(),))
    os._exit(3)  # not reached


def run(url: str, rounds: int, cases: int) -> dict[str, Any]:
    cid = f"bench-{secrets.token_hex(4)}"
    campaign = _campaign(url, cid, START)
    for i in range(cases):
        case_id = f"s{i:03d}"
        campaign.open_case(case_id, organization=f"{i}支部", secretary=CAST.secretary(case_id))
        drive_to(campaign, case_id, rf.Stage.EVALUATION, cast=CAST,
                 clock=campaign.clock)  # type: ignore[arg-type]
        campaign.fire(case_id, "comment", actor=CAST.superior, text="工作扎实")
        campaign.fire(case_id, "comment", actor=CAST.delegate, text="成效明显")
        campaign.fire(case_id, "finish_evaluation", actor=CAST.organizer,
                      vote={"good": 10 + i % 7, "average": 3})
    campaign.store.close()  # type: ignore[attr-defined]
    fork = multiprocessing.get_context("fork")
    killed = 0
    for n in range(rounds):
        child = fork.Process(target=_child, args=(url, cid, n))
        child.start()
        child.join(300)
        killed += child.exitcode == -signal.SIGKILL
        _publish(url, cid, n)
    final = _campaign(url, cid, START.add(days=40 + 2 * rounds))
    counted = Counter(r.event for case in final.cases() for r in case.history)
    expected = 2 * cases * rounds
    found = counted["publish_results"] + counted["feedback"]
    return {"rounds": rounds, "cases": cases, "killed_after_commit": killed,
            "publication_events_expected": expected, "publication_events_found": found,
            "extra_events": found - expected, "verify_ok": final.verify().ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--db", default=None, help="database URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/publish.db"
        print(json.dumps(run(url, args.rounds, args.cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
