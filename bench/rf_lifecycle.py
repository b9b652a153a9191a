"""The reviewflow variant of the lifecycle benchmark, and the memory measure of a case.

N in-memory cases (``MemoryStore``, ``FrozenClock``) go through the whole lifecycle of
``Policy.default`` with every check on: roles (each case's own secretary, guidance-group
membership at the first approval level, the organizer at the second), deadlines (the hard
report deadline, the meeting window, soft deadlines), report content rules, and a sealed,
hash-chained event record for every step. Per case, in campaign phases:

``open_case``, ``finish_research`` (problem list), ``submit_report`` (a report that passes
the content rules), ``sign_off`` once per approval level, ``hold_meeting`` (date and
attendance), ``comment`` twice (superior secretary, department delegate),
``finish_evaluation`` (on-site vote counts), ``hold_talk`` (the batch event: ``fire_many``
over batches of cases), ``submit_special_report``.

"create" is ``open_case`` for the N cases; "drive" is every later step. A "transition"
is one fired event (a ``sign_off`` that stays in approval and a ``comment`` count too).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import attrs
import pendulum

__all__ = ["ReviewflowLifecycle", "ReviewflowMacLifecycle", "available", "memory_profile",
           "unavailable_reason"]

TZ = "Asia/Shanghai"
GROUPS = 10
TALK_BATCH = 1000


def unavailable_reason() -> str | None:
    """Return why the reviewflow variant cannot run yet, or None when it can."""
    try:
        import reviewflow
    except ImportError as exc:  # pragma: no cover  # the package is installed editable
        return f"reviewflow does not import: {exc}"
    if getattr(reviewflow, "Campaign", None) is None:
        try:
            from reviewflow.campaign import Campaign  # noqa: F401
        except ImportError as exc:
            return f"reviewflow.Campaign is not yet available ({exc})"
    return None


def available() -> bool:
    """Return True when ``reviewflow.Campaign`` can be imported."""
    return unavailable_reason() is None


def _campaign_class() -> Any:
    import reviewflow

    cls = getattr(reviewflow, "Campaign", None)
    if cls is None:
        from reviewflow.campaign import Campaign as cls
    return cls


def phase_times(policy: Any) -> dict[str, pendulum.DateTime]:
    """Return when each phase happens, fitted to the policy's report deadline and meeting window.

    Every step is in time: reports well before the (hard) report deadline, meetings a few
    days after the meeting window opens, nothing after a soft deadline.
    """
    from reviewflow import Stage

    due_rule = policy.stage(Stage.DRAFTING).due
    report_due = getattr(due_rule, "at", None) or pendulum.datetime(policy.year, 1, 18, tz=TZ)
    opens = policy.stage(Stage.MEETING).opens or report_due.subtract(days=7)
    meeting = max(opens, report_due.subtract(days=2)).add(days=1)
    return {
        "open_case": report_due.subtract(days=15).at(9),
        "finish_research": report_due.subtract(days=14).at(9),
        "submit_report": report_due.subtract(days=9).at(9),
        "sign_off": report_due.subtract(days=6).at(9),
        "hold_meeting": meeting.at(15),
        "comment": meeting.add(days=1).at(9),
        "finish_evaluation": meeting.add(days=2).at(9),
        "hold_talk": meeting.add(days=35).at(9),
        "submit_special_report": meeting.add(days=53).at(9),
    }


def _report() -> Any:
    from reviewflow import Problem, Report

    return Report(
        duty="认真履行党建工作第一责任人职责，年内主持召开支部委员会十二次，讲党课两次。",
        progress="推进“两学一做”学习教育常态化制度化，完成支部换届选举，发展党员两名。",
        problems=[
            Problem(
                description="组织生活不够规范，“三会一课”记录不完整。",
                causes="主观上重业务轻党建，客观上教学任务重、时间安排紧。",
                measure="建立组织生活台账，每月由支部书记审核签字，年底专项检查。",
            ),
            Problem(
                description="党员发展工作滞后，青年教师入党积极分子培养不足。",
                causes="培养联系人制度落实不到位，谈心谈话次数偏少。",
                measure="为每名积极分子确定两名培养联系人，每季度谈话一次并记录。",
            ),
            Problem(
                description="党建与业务工作融合不够，党员先锋岗作用发挥不明显。",
                causes="缺少具体抓手和考核办法，激励措施不足。",
                measure="设立党员先锋岗并纳入年度考核，每学期评选一次先进典型。",
            ),
        ],
        plans=(
            "下一年度将以提升组织力为重点，落实“三会一课”制度，严格党员教育管理，"
            "加强青年教师思想政治工作，推动党建工作与教育教学深度融合，"
            "建立问题整改台账，逐项销号，确保整改到位。"
        ),
    )


PROBLEMS = ("组织生活不规范", "党员发展滞后", "党建与业务融合不够")
ATTENDANCE = {"party_members": 28, "cadres": 6, "public": 10, "parents_teachers": 12}
VOTE = {"good": 30, "fairly_good": 12, "average": 3, "poor": 1}


@attrs.define
class _World:
    """Everything one run needs: the campaign, its clock, the actors and the case ids."""

    campaign: Any
    clock: Any
    ids: list[str]
    secretaries: list[Any]
    groups: list[str]
    actors: dict[str, Any]
    signers: list[Any]
    report: Any
    times: dict[str, pendulum.DateTime]


def _world(n: int, audit_key: bytes | None = None) -> _World:
    import reviewflow as rf
    from reviewflow.store.memory import MemoryStore

    base = rf.Policy.default(year=2016, tz=TZ)
    groups = [f"group-{g:02d}" for g in range(GROUPS)]
    policy = attrs.evolve(
        base, guidance_groups={g: frozenset({f"reviewer-{g}"}) for g in groups},
    )
    times = phase_times(policy)
    clock = rf.FrozenClock(times["open_case"])
    extra: dict[str, Any] = {} if audit_key is None else {"audit_key": audit_key}
    campaign = _campaign_class()(policy, clock=clock, store=MemoryStore(), **extra)
    secretary_roles = frozenset({"secretary"})
    ids = [f"branch-{i:07d}" for i in range(n)]
    secretaries = [rf.Actor(f"sec-{i:07d}", f"书记{i}", roles=secretary_roles) for i in range(n)]
    actors = {
        "organizer": rf.Actor("bureau", "区教育局党组", roles={"organizer"}),
        "superior": rf.Actor("wang", "王五", roles={"superior_secretary"}),
        "delegate": rf.Actor("zhao", "赵六", roles={"department_delegate"}),
        "office": rf.Actor("office", "局机关党委办公室", roles={"party_office"}),
    }
    signers = [rf.Actor(f"reviewer-{g}", g, roles={"guidance_group"}) for g in groups]
    return _World(campaign, clock, ids, secretaries, groups, actors, signers, _report(),
                  times)


def _open(w: _World) -> None:
    w.clock.set(w.times["open_case"])
    open_case = w.campaign.open_case
    groups = w.groups
    for i, (cid, sec) in enumerate(zip(w.ids, w.secretaries, strict=True)):
        open_case(cid, organization=f"第{i}党支部", secretary=sec,
                  guidance_group=groups[i % GROUPS])


def _phases(w: _World) -> list[tuple[str, Any]]:
    """Return the drive phases: (event, a function running it over every case)."""
    c = w.campaign
    fire = c.fire
    ids = w.ids
    org = w.actors["organizer"]
    levels = len(c.policy.approval_levels)

    def finish_research() -> None:
        problems = list(PROBLEMS)
        for cid in ids:
            fire(cid, "finish_research", actor=org, problems=problems)

    def submit_report() -> None:
        report = w.report
        for cid, sec in zip(ids, w.secretaries, strict=True):
            fire(cid, "submit_report", actor=sec, report=report)

    def sign_off_level(level: int) -> Any:
        def run() -> None:
            if level == 0:
                signers = w.signers
                for i, cid in enumerate(ids):
                    fire(cid, "sign_off", actor=signers[i % GROUPS], comment="同意")
            else:
                for cid in ids:
                    fire(cid, "sign_off", actor=org, comment="审定同意")
        return run

    def hold_meeting() -> None:
        attendance = ATTENDANCE
        for cid in ids:
            fire(cid, "hold_meeting", actor=org, attendance=attendance)

    def comments() -> None:
        for who, text in (("superior", "履职较好，问题查找准确。"), ("delegate", "整改措施具体可行。")):
            actor = w.actors[who]
            for cid in ids:
                fire(cid, "comment", actor=actor, text=text)

    def finish_evaluation() -> None:
        vote = VOTE
        for cid in ids:
            fire(cid, "finish_evaluation", actor=org, vote=vote)

    def hold_talk() -> None:
        superior = w.actors["superior"]
        many = c.fire_many
        for start in range(0, len(ids), TALK_BATCH):
            results = many(ids[start:start + TALK_BATCH], "hold_talk", actor=superior,
                           notes="集体约谈，指出问题，提出整改要求。")
            failed = [r for r in results if not r.ok]
            if failed:
                raise RuntimeError(f"hold_talk refused for {len(failed)} cases: {failed[0].error}")

    def special_report() -> None:
        office = w.actors["office"]
        for cid in ids:
            fire(cid, "submit_special_report", actor=office, text="专题报告：整改落实情况。")

    out: list[tuple[str, Any]] = [
        ("finish_research", finish_research),
        ("submit_report", submit_report),
    ]
    out += [("sign_off", sign_off_level(level)) for level in range(levels)]
    out += [
        ("hold_meeting", hold_meeting),
        ("comment", comments),
        ("finish_evaluation", finish_evaluation),
        ("hold_talk", hold_talk),
        ("submit_special_report", special_report),
    ]
    return out


def _events_per_case(levels: int) -> int:
    # finish_research, submit_report, sign_off × levels, hold_meeting, comment × 2,
    # finish_evaluation, hold_talk, submit_special_report
    return 2 + levels + 1 + 2 + 3


def warm_up() -> None:
    """Run a small campaign once, so lazy imports and first-call caches are not measured."""
    w = _world(20)
    _open(w)
    for event, run in _phases(w):
        w.clock.set(w.times[event])
        run()


class ReviewflowLifecycle:
    """The reviewflow variant, with the same ``run(n)`` / ``memory(n)`` shape as the peers."""

    name = "reviewflow"
    description = "reviewflow.Campaign, MemoryStore, every check and event record on"
    cheap = False
    #: The audit key of the campaign (None: no MACs).
    audit_key: bytes | None = None

    def __init__(self) -> None:
        import reviewflow as rf

        self.levels = len(rf.Policy.default(year=2016).approval_levels)
        self.transitions_per_case = _events_per_case(self.levels)
        warm_up()

    def run(self, n: int) -> dict[str, Any]:
        """Time one run at ``n`` cases; check it; return the figures (with per-phase times)."""
        w = _world(n, self.audit_key)
        phases = _phases(w)
        gc.collect()
        t0 = time.perf_counter()
        _open(w)
        t1 = time.perf_counter()
        phase_s: dict[str, float] = {}
        for event, run in phases:
            w.clock.set(w.times[event])
            p0 = time.perf_counter()
            run()
            phase_s[event] = phase_s.get(event, 0.0) + time.perf_counter() - p0
        t2 = time.perf_counter()
        self._check(w, n)
        return {
            "create_s": t1 - t0,
            "drive_s": t2 - t1,
            "transitions": self.transitions_per_case * n,
            "phase_s": phase_s,
        }

    def _check(self, w: _World, n: int) -> None:
        c = w.campaign
        closed = c.cases(stage="closed")
        if len(closed) != n:
            raise AssertionError(f"{n - len(closed)} of {n} cases did not close")
        expected = 1 + self.transitions_per_case
        wrong = [x.case_id for x in closed if x.version != expected]
        if wrong:
            raise AssertionError(f"{len(wrong)} cases have a version other than {expected}")
        if n <= 10_000:
            report = c.verify()
            if getattr(report, "problems", ()):
                raise AssertionError(f"hash chains do not verify: {report.problems[:3]}")

    def memory(self, n: int) -> dict[str, Any]:
        """Return bytes per case after opening ``n`` cases, with and without event history."""
        stage = memory_profile(n, stages=("research",))["stages"]["research"]
        return {
            "bytes_per_case": stage["ex_history_bytes_per_case"],
            "with_history_bytes_per_case": stage["total_bytes_per_case"],
            "counted": "open cases in the MemoryStore, event history removed (see memory section)",
        }


def _by_line(first: Any, last: Any, n: int, top: int = 12) -> list[dict[str, Any]]:
    """Say which source lines hold the memory that stays per case (biggest first)."""
    import linecache

    out = []
    for diff in last.compare_to(first, "lineno")[:top]:
        frame = diff.traceback[0]
        if diff.size_diff / n < 1:
            continue
        out.append({
            "where": f"{_short(frame.filename)}:{frame.lineno}",
            "code": linecache.getline(frame.filename, frame.lineno).strip(),
            "bytes_per_case": diff.size_diff / n,
            "blocks_per_case": diff.count_diff / n,
        })
    return out


def _short(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def _store_data(campaign: Any) -> Any:
    """Return the MemoryStore's record of this campaign (a benchmark may look inside)."""
    return campaign.store._campaigns[campaign.id]


def _drop_history(campaign: Any) -> dict[str, int]:
    data = _store_data(campaign)
    counts = {
        "history_records": sum(len(v) for v in data.history.values()),
        "outbox_records": len(data.outbox),
        "refusals": len(data.refusals),
    }
    data.history.clear()
    data.outbox.clear()
    return counts


_STAGE_STEPS = {
    "research": 0,
    "drafting": 1,        # finish_research
    "approval": 2,        # + submit_report
    "closed": None,       # everything
}


def memory_profile(
    n: int,
    stages: tuple[str, ...] = ("research", "drafting", "approval", "closed"),
    *,
    detail: bool = False,
) -> dict[str, Any]:
    """Measure bytes per in-memory case at each stage, with and without the event history.

    For each stage a fresh campaign is built (untimed, before counting starts), then under
    tracemalloc: the N secretaries are created, N cases opened and moved to the stage.
    ``total`` is what is still allocated then (after ``gc.collect()``); the event history
    (the store's per-case record lists, and its outbox) is then dropped, and ``ex_history``
    is what remains. Counted in ``ex_history``: the case snapshots the store keeps, their
    dict entries, ids and organisation names, the secretary actors, ``case.data`` (problem
    list, report body, signatures, ... as the stage has them). Not counted: the campaign,
    policy and shared machine (built before counting starts).
    """
    out: dict[str, Any] = {"n": n, "stages": {}}
    warm_up()
    for stage in stages:
        steps = _STAGE_STEPS[stage]
        w = _world(0)  # the campaign and its fixed costs, outside the count
        w.ids = [f"branch-{i:07d}" for i in range(n)]
        phases = _phases(w)
        if steps is not None:
            phases = phases[:steps]

        def build(w: _World = w, phases: list[tuple[str, Any]] = phases) -> None:
            import reviewflow as rf

            roles = frozenset({"secretary"})
            w.secretaries = [rf.Actor(f"sec-{i:07d}", f"书记{i}", roles=roles) for i in range(n)]
            _open(w)
            for event, run in phases:
                w.clock.set(w.times[event])
                run()

        gc.collect()
        tracemalloc.start()
        try:
            first = tracemalloc.take_snapshot() if detail else None
            start = tracemalloc.get_traced_memory()[0]
            build()
            gc.collect()
            total = tracemalloc.get_traced_memory()[0] - start
            counts = _drop_history(w.campaign)
            gc.collect()
            remaining = tracemalloc.get_traced_memory()[0] - start
            last = tracemalloc.take_snapshot() if first is not None else None
        finally:
            tracemalloc.stop()
        out["stages"][stage] = {
            "total_bytes_per_case": total / n,
            "history_bytes_per_case": (total - remaining) / n,
            "ex_history_bytes_per_case": remaining / n,
            "records_per_case": counts["history_records"] / n,
            "counts": counts,
        }
        if first is not None and last is not None:
            out["stages"][stage]["by_line"] = _by_line(first, last, n)
        del w
    return out


class ReviewflowMacLifecycle(ReviewflowLifecycle):
    """The reviewflow variant with an audit key: every event also gets its keyed MAC."""

    name = "reviewflow_mac"
    description = "reviewflow.Campaign with audit_key (an HMAC-SHA256 per event), MemoryStore"
    audit_key = b"bench audit key, outside the database"
