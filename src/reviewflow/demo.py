"""A whole simulated campaign: N branches through every stage, on a frozen clock.

``reviewflow demo`` runs it and prints the summary; :func:`run_demo` is the same
from Python. The simulation is deterministic for a given seed: research, reports
(a few refused by the content rules, one sent back for revision), two approval
levels, meetings from mid-January, the two comments and an on-site vote with
random counts, the collective talk as one batch step, and the special reports.
It ends with the results, the audit check, and the files it wrote.

>>> result = run_demo(branches=3, db="memory", out_dir=None, seed=7)
>>> result.stages["closed"], result.verify.ok
(3, True)
"""

from __future__ import annotations

import contextlib
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pendulum

from reviewflow.campaign import Campaign
from reviewflow.clock import FrozenClock
from reviewflow.exceptions import ReviewflowError, TransitionRefused
from reviewflow.export.results import ResultRow, collect_results
from reviewflow.model import Actor, Problem, Report, Stage
from reviewflow.policy import Policy
from reviewflow.store.base import Store

__all__ = ["DEMO_ACTORS", "DemoResult", "run_demo"]

YEAR = 2016
TZ = "Asia/Shanghai"

#: The people of the demo campaign (secretaries are made per branch).
DEMO_ACTORS: tuple[Actor, ...] = (
    Actor("bureau", "区教育局党组", roles={"organizer"}),
    Actor("li", "李指导（指导组）", roles={"guidance_group"}),
    Actor("wang", "王书记（上级党组织书记）", roles={"superior_secretary"}),
    Actor("zhao", "赵部长（部门派员）", roles={"department_delegate"}),
    Actor("office", "局机关党委办公室", roles={"party_office"}),
)

_KINDS = ("中学", "小学", "幼儿园", "职业学校", "教研室", "少年宫")
_NUMERALS = "一二三四五六七八九十"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华"
_PROBLEMS = (
    "组织生活不规范", "党员发展滞后", "“三会一课”记录不全", "党费收缴不及时",
    "主题党日活动形式单一", "谈心谈话开展不经常", "党务公开不及时", "意识形态阵地管理不严",
)


@attrs.frozen(kw_only=True)
class DemoResult:
    """What a demo run produced: the campaign, counts, results and the files written."""

    campaign: Campaign
    branches: int
    store: str
    stages: dict[str, int]
    refusals: dict[str, int]
    results: list[ResultRow]
    verify: Any
    files: dict[str, Path]
    rungs: int = 0
    #: Reports sent back for revision (return_for_revision steps).
    returns: int = 0


def _org_name(i: int) -> str:
    kind = _KINDS[i % len(_KINDS)]
    n = i // len(_KINDS) + 1
    number = _NUMERALS[n - 1] if n <= 10 else str(n)
    return f"第{number}{kind}党支部"


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _report(problems: list[str], rng: random.Random, *, bloated: bool = False) -> Report:
    duty = "认真履行党建工作第一责任人职责，定期研究部署党建工作，带头讲党课。"
    progress = f"全年开展主题党日{rng.randint(8, 14)}次，发展党员{rng.randint(1, 5)}名。"
    if bloated:  # achievements far over a third of the text: the content rule refuses it
        duty *= 12
        progress *= 12
    return Report(
        duty=duty,
        progress=progress,
        problems=[Problem(description=p, causes="主观上重视不够，客观上工作力量不足。",
                          measure="建立问题台账，明确责任人和时限，逐条整改销号。") for p in problems],
        plans="坚持问题导向，针对查找出来的突出问题一条一条提出解决方案，"
              "做到工作措施有抓手、有载体、可监督、可考核，推动党建工作落地见效。" * 2,
    )


def _vote(rng: random.Random, present: int = 60) -> dict[str, int]:
    voters = min(rng.randint(25, 60), present)  # never more votes than people present
    quality = rng.random()
    weights = (0.35 + 0.5 * quality, 0.3, 0.2 * (1 - quality) + 0.05, 0.08 * (1 - quality))
    counts = dict.fromkeys(("good", "fairly_good", "average", "poor"), 0)
    for key in rng.choices(list(counts), weights=weights, k=voters):
        counts[key] += 1
    return counts


def _open_store(db: str | os.PathLike[str] | None, out_dir: Path | None) -> tuple[Store | None, str]:
    """Return (store or None for memory, a description)."""
    from reviewflow.store import open_store

    if db == "memory":
        return None, "memory"
    if db is None:
        assert out_dir is not None
        path = out_dir / "reviewflow.db"
        # a simulation need not survive a power cut: skip the fsync per commit (WAL keeps
        # it crash-safe); a --db given by the user is used exactly as given
        url = f"sqlite:///{path}?synchronous=normal"
    else:
        text = os.fspath(db)
        url = text if "://" in text else f"sqlite:///{Path(text).resolve()}"
    return open_store(url), url


def fresh_dir(base: Path) -> Path:
    """Return ``base`` if it is new or empty, else ``base-2``, ``base-3``, ... (created)."""
    def taken(path: Path) -> bool:
        if not path.exists():
            return False
        if not path.is_dir():
            return True
        with os.scandir(path) as entries:  # closed even when we stop at the first entry
            return any(True for _ in entries)

    candidate = base
    n = 1
    while taken(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


def run_demo(
    branches: int = 50,
    *,
    db: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = "reviewflow-demo",
    seed: int = YEAR,
    progress: Callable[[str, int], None] | None = None,
    lang: str = "zh",
) -> DemoResult:
    """Run a simulated campaign of ``branches`` branches and return what it did.

    ``db``: a database URL or a SQLite file path; ``"memory"`` keeps everything in memory;
    None puts ``reviewflow.db`` in the output directory. ``out_dir``: where the files go
    (a fresh directory is made next to it if it is not empty); None writes no files.
    ``progress(stage, n)`` is called as steps are done (n steps at a time).
    """
    from reviewflow.exceptions import InputError

    if not isinstance(branches, int) or not 1 <= branches <= 100_000:
        raise InputError(f"--branches must be a whole number from 1 to 100000, got {branches!r}")
    rng = random.Random(seed)
    out = fresh_dir(Path(out_dir)) if out_dir is not None else None
    store, store_text = _open_store(db, out)
    clock = FrozenClock(pendulum.datetime(YEAR, 1, 4, 9, tz=TZ))
    policy = Policy.default(year=YEAR)
    campaign = Campaign(policy, clock=clock, store=store)
    if campaign.cases():
        raise InputError(f"the database {store_text} already holds campaign {campaign.id}; "
                         "give the demo a new --db (or none: it makes a fresh directory)")
    bureau, li, wang, zhao, office = DEMO_ACTORS
    tick: Callable[[str, int], None] = progress or (lambda _s, _n: None)
    rungs = 0

    def sweep() -> None:
        nonlocal rungs
        try:
            fired = campaign.sweep()
        except ReviewflowError:
            return
        rungs += len(fired)

    def batch(ids: list[str], event: str, actor: Actor, stage: str, **data: Any) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for result in campaign.fire_many(chunk, event, actor=actor, **data):
                if result.error is not None and not isinstance(result.error, TransitionRefused):
                    raise result.error
            tick(stage, len(chunk))

    # research (提前准备): open the cases and write the problem lists
    ids = [f"branch-{i:04d}" for i in range(1, branches + 1)]
    secretaries = {cid: Actor(f"sec-{cid}", _person(rng), roles={"secretary"}) for cid in ids}
    campaign.open_cases(
        {"case_id": cid, "organization": _org_name(i), "secretary": secretaries[cid]}
        for i, cid in enumerate(ids)
    )
    tick("research", branches)
    problem_sets = [sorted(rng.sample(_PROBLEMS, rng.randint(1, 3))) for _ in range(4)]
    chosen = {cid: rng.randrange(len(problem_sets)) for cid in ids}
    clock.advance(days=1)
    for k, problems in enumerate(problem_sets):
        group = [cid for cid in ids if chosen[cid] == k]
        if group:
            batch(group, "finish_research", bureau, "research", problems=problems)
    sweep()

    # drafting (撰写述职报告): a few reports break the 1/3 rule and are refused first
    clock.advance(days=2)
    bloated = set(rng.sample(ids, max(1, branches // 25)))
    for cid in ids:
        problems = problem_sets[chosen[cid]]
        if cid in bloated:
            with contextlib.suppress(TransitionRefused):
                campaign.fire(cid, "submit_report", actor=secretaries[cid],
                              report=_report(problems, rng, bloated=True))
        campaign.fire(cid, "submit_report", actor=secretaries[cid], report=_report(problems, rng))
        tick("drafting", 1)
    sweep()

    # approval (材料审阅): one report goes back for revision; two levels sign
    clock.advance(days=1)
    sent_back = ids[rng.randrange(len(ids))]
    with contextlib.suppress(TransitionRefused):  # a secretary may not sign their own report
        campaign.fire(sent_back, "sign_off", actor=secretaries[sent_back])
    campaign.fire(sent_back, "return_for_revision", actor=li,
                  reason="问题查摆不够具体，原因分析不深入，请修改后重新报送")
    clock.advance(hours=6)
    campaign.fire(sent_back, "submit_report", actor=secretaries[sent_back],
                  report=_report(problem_sets[chosen[sent_back]] + ["问题整改跟踪不到位"], rng))
    clock.advance(days=1)
    batch(ids, "sign_off", li, "approval", comment="同意")
    clock.advance(hours=4)
    batch(ids, "sign_off", bureau, "approval", comment="同意，提交述职评议会")
    sweep()

    # meeting (述职评议会): too early before mid-January, then held over several days
    with contextlib.suppress(TransitionRefused):
        campaign.fire(ids[0], "hold_meeting", actor=bureau, attendance={"party_members": 20})
    clock.set(pendulum.datetime(YEAR, 1, 12, 9, tz=TZ))
    days = 5
    for d in range(days):
        group = ids[d::days]
        if group:
            batch(group, "hold_meeting", bureau, "meeting",
                  attendance={"party_members": 20 + d, "cadres": 8, "public": 5,
                              "parents_teachers": 6})
        clock.advance(days=1)
    sweep()

    # evaluation (三评): two comments, and the on-site vote with random counts
    batch(ids, "comment", wang, "evaluation", text="抓党建工作思路清晰，问题查摆比较到位。")
    batch(ids, "comment", zhao, "evaluation", text="整改措施具体，建议加强跟踪问效。")
    for cid in ids:
        present = sum(campaign.case(cid).data["meeting"]["attendance"].values())
        campaign.fire(cid, "finish_evaluation", actor=bureau, vote=_vote(rng, present))
        tick("evaluation", 1)
    sweep()

    # group talk (集体约谈): one batch step over every case
    clock.set(pendulum.datetime(YEAR, 2, 3, 15, tz=TZ))
    batch(ids, "hold_talk", wang, "group_talk", notes="集体约谈：指出问题，提出整改要求。")

    # report back (专题报告)
    clock.advance(days=14)
    batch(ids, "submit_special_report", office, "report_back",
          text="专题报告：对照问题清单逐条整改，整改清单已报局机关党委办公室。")
    sweep()

    final = campaign.cases()
    stages = Counter(case.stage.value for case in final)
    returns = sum(int(case.data.get("returns", 0)) for case in final)
    refusals = Counter(r.reason for r in campaign.refusals())
    results = collect_results(campaign)
    report = campaign.verify()
    files: dict[str, Path] = {}
    if store_text.startswith("sqlite:///"):
        files["db"] = Path(store_text.removeprefix("sqlite:///").split("?", 1)[0])
    if out is not None:
        files.update(_write_files(campaign, results, out, store_text, lang))
    return DemoResult(
        campaign=campaign, branches=branches, store=store_text,
        stages={s.value: stages.get(s.value, 0) for s in Stage}, refusals=dict(refusals),
        results=results, verify=report, files=files, rungs=rungs, returns=returns,
    )


def _write_files(campaign: Campaign, results: list[ResultRow], out: Path, store: str,
                 lang: str) -> dict[str, Path]:
    from reviewflow._files import write_file
    from reviewflow.export.notice import notice_html, notice_markdown
    from reviewflow.export.xlsx import write_workbook

    files: dict[str, Path] = {}
    policy = campaign.policy
    files["workbook"] = write_workbook(results, out / "results.xlsx", policy=policy, lang=lang,
                                       title=policy.name)
    kw: dict[str, Any] = {"policy": policy, "issuer": "区教育局党组", "date": f"{YEAR}年3月1日"}
    files["notice"] = write_file(out / "notice.md", notice_markdown(results, **kw))
    files["notice_html"] = write_file(out / "notice.html", notice_html(results, **kw))
    files["config"] = _write_config(out, store)
    return files


def _write_config(out: Path, store: str) -> Path:
    """Write a campaign file so that the CLI can inspect the demo's database."""
    db = store
    if store.startswith("sqlite:///"):
        path = Path(store.removeprefix("sqlite:///").split("?", 1)[0])
        if path.parent == out:
            db = f"sqlite:///{path.name}"
    lines = [
        "# reviewflow campaign file, written by `reviewflow demo`.",
        "# Use it with: reviewflow --config " + str(out / "reviewflow.toml") + " status",
        f"db = {_toml_str(db)}" if store != "memory" and not store.startswith("memory") else
        "# db: the demo ran in memory",
        f'campaign = "{YEAR}"',
        "# policy: none given, so the policy stored with the campaign is used (the seed's plan)",
        "# a simulation: --now may freeze the clock (its events say \"clock\": \"frozen\")",
        "rehearsal = true",
        "",
    ]
    for actor in DEMO_ACTORS:
        lines.append(f"[actors.{actor.id}]")
        lines.append(f"name = {_toml_str(actor.name)}")
        lines.append("roles = [" + ", ".join(_toml_str(r) for r in sorted(actor.roles)) + "]")
        lines.append("")
    from reviewflow._files import write_file

    return write_file(out / "reviewflow.toml", "\n".join(lines))


def _toml_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)
