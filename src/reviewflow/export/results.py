"""The results of a campaign as rows: counts, score, grade and rank per case.

Every export (workbook, CSV, JSON, the 公示 notice) is built from these rows, so
they all say the same thing. When the evaluations module offers
``Campaign.results()``, its figures are used; otherwise the rows are computed
here from each case's recorded vote with the seed's formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs

from reviewflow.model import Case

__all__ = ["GRADE_BANDS", "OPTIONS", "ResultRow", "collect_results", "rank_rows", "rows_from_cases"]

#: The seed's vote options: key, Chinese label, points.
OPTIONS: tuple[tuple[str, str, int], ...] = (
    ("good", "好", 100),
    ("fairly_good", "较好", 80),
    ("average", "一般", 60),
    ("poor", "差", 0),
)
_BY_LABEL = {label: key for key, label, _p in OPTIONS}

#: Score bands used for a grade when the policy has none (lowest score of each grade).
GRADE_BANDS: tuple[tuple[Decimal, str], ...] = (
    (Decimal(90), "好"),
    (Decimal(80), "较好"),
    (Decimal(60), "一般"),
    (Decimal(0), "差"),
)


@attrs.frozen(kw_only=True)
class ResultRow:
    """One case's line in the results: who, the vote counts, the score, the grade and the rank."""

    case_id: str
    organization: str
    secretary: str
    stage: str
    counts: Mapping[str, int] = attrs.field(factory=dict)
    valid: int = 0
    score: Decimal | None = None
    rounded: Decimal | None = None
    grade: str = ""
    rank: int | None = None
    #: Obligations the grade brings (talk, rectification list, ...), when the policy says.
    follow_ups: tuple[str, ...] = ()
    #: Comment channels whose comment was amended (the newest counts; the first is kept).
    amended: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the row as plain JSON data (scores as strings, exact)."""
        return {
            "case_id": self.case_id,
            "organization": self.organization,
            "secretary": self.secretary,
            "stage": self.stage,
            "counts": dict(self.counts),
            "valid": self.valid,
            "score": None if self.score is None else str(self.score),
            "rounded": None if self.rounded is None else str(self.rounded),
            "grade": self.grade,
            "rank": self.rank,
            "follow_ups": list(self.follow_ups),
            "amended": list(self.amended),
        }


def _normal_counts(vote: Mapping[str, Any]) -> dict[str, int]:
    counts = {key: 0 for key, _l, _p in OPTIONS}
    for key, n in vote.items():
        name = _BY_LABEL.get(key, key)
        if isinstance(n, int) and not isinstance(n, bool):
            counts[name] = counts.get(name, 0) + n
    return counts


def _grade(score: Decimal) -> str:
    for low, grade in GRADE_BANDS:
        if score >= low:
            return grade
    return GRADE_BANDS[-1][1]


def _row_from_case(case: Case, places: int) -> ResultRow:
    data = case.data
    vote = data.get("vote")
    evaluation = data.get("evaluation") or {}
    counts: dict[str, int] = _normal_counts(vote) if isinstance(vote, Mapping) else {}
    score: Decimal | None = None
    if "score" in evaluation:
        score = Decimal(str(evaluation["score"]))
    elif counts and sum(counts.values()) > 0:
        points = {key: p for key, _l, p in OPTIONS}
        total = sum(n for k, n in counts.items() if k in points)
        if total:
            score = Decimal(sum(points[k] * n for k, n in counts.items() if k in points)) / total
    rounded = None
    if score is not None:
        rounded = score.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    grade = str(evaluation.get("grade") or (_grade(score) if score is not None else ""))
    comments = data.get("comments")
    amended = tuple(sorted(ch for ch, c in comments.items()
                           if isinstance(c, Mapping) and c.get("earlier"))
                    ) if isinstance(comments, Mapping) else ()
    return ResultRow(
        amended=amended,
        case_id=case.case_id,
        organization=case.organization,
        secretary=case.secretary.name or case.secretary.id,
        stage=case.stage.value,
        counts=counts,
        valid=sum(counts.values()),
        score=score,
        rounded=rounded,
        grade=grade,
    )


def rank_rows(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Rank rows by exact score, highest first; equal scores share a rank (1, 2, 2, 4).

    Rows without a score come last, unranked, ordered by case id.

    >>> a = ResultRow(case_id="a", organization="", secretary="", stage="", score=Decimal(80))
    >>> b = ResultRow(case_id="b", organization="", secretary="", stage="", score=Decimal(90))
    >>> [(r.case_id, r.rank) for r in rank_rows([a, b])]
    [('b', 1), ('a', 2)]
    """
    scored = sorted((r for r in rows if r.score is not None),
                    key=lambda r: (-(r.score or 0), r.case_id))
    unscored = sorted((r for r in rows if r.score is None), key=lambda r: r.case_id)
    out: list[ResultRow] = []
    previous: Decimal | None = None
    rank = 0
    for position, row in enumerate(scored, 1):
        if row.score != previous:
            rank = position
            previous = row.score
        out.append(attrs.evolve(row, rank=rank))
    return out + [attrs.evolve(r, rank=None) for r in unscored]


def rows_from_cases(cases: Iterable[Case], *, places: int = 2) -> list[ResultRow]:
    """Build ranked result rows from cases' recorded votes (the seed's formula)."""
    return rank_rows(_row_from_case(case, places) for case in cases)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    inner = getattr(value, "value", value)  # a ScoreResult carries .value
    return Decimal(str(inner))


def _from_backend(items: Iterable[Any], cases: Mapping[str, Case], places: int) -> list[ResultRow]:
    rows = []
    for item in items:
        data: Mapping[str, Any]
        if isinstance(item, Mapping):
            data = item
        elif callable(getattr(item, "to_json", None)):
            data = item.to_json()
        else:
            data = {k: getattr(item, k, None) for k in
                    ("case_id", "score", "rounded", "grade", "grade_label", "rank", "counts",
                     "valid", "follow_ups")}
        case_id = str(data.get("case_id"))
        case = cases.get(case_id)
        base = _row_from_case(case, places) if case is not None else ResultRow(
            case_id=case_id, organization="", secretary="", stage="")
        score = _decimal(data.get("score"))
        if score is None:
            score = base.score
        rounded = _decimal(data.get("rounded"))
        if rounded is None and score is not None:
            rounded = score.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        counts = data.get("counts")
        rank = data.get("rank")
        grade = data.get("grade_label") or data.get("grade") or base.grade
        rows.append(attrs.evolve(
            base,
            score=score,
            rounded=rounded,
            grade=str(getattr(grade, "label", None) or getattr(grade, "key", None) or grade),
            counts=_normal_counts(counts) if isinstance(counts, Mapping) else base.counts,
            valid=int(data.get("valid") or base.valid),
            rank=None if rank is None else int(rank),
            follow_ups=tuple(str(f) for f in data.get("follow_ups") or ()),
        ))
    listed = {r.case_id for r in rows}
    for case_id in sorted(set(cases) - listed):  # not scored yet: one row each, unranked
        rows.append(attrs.evolve(_row_from_case(cases[case_id], places), score=None, rounded=None,
                                 grade="", rank=None))
    if any(r.rank is None and r.score is not None for r in rows):
        return rank_rows(rows)
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.case_id))


def collect_results(campaign: Any) -> list[ResultRow]:
    """Return the campaign's results, one ranked row per case.

    For a :class:`~reviewflow.Campaign`: its cases as their sealed events say (who,
    which stage) and the scores, grades and ranks of ``Campaign.results()``, itself
    read from the sealed events; nothing is scored here. Another object with
    ``cases()`` (and perhaps ``results()``) is read as before.
    """
    places = int(getattr(getattr(campaign.policy, "scoring", None), "places", 2))
    from reviewflow.campaign import Campaign

    if isinstance(campaign, Campaign):
        from reviewflow._sealed import sealed_cases

        # who, the stage and the results from the sealed record, never the case rows
        cases = sealed_cases(campaign.store, campaign.id)
        return _from_backend(campaign.results(), {c.case_id: c for c in cases}, places)
    cases = campaign.cases()
    backend = getattr(campaign, "results", None)
    if callable(backend):
        return _from_backend(backend(), {c.case_id: c for c in cases}, places)
    return rows_from_cases(cases, places=places)
