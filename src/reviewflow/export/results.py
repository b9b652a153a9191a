"""The results of a campaign as rows: counts, score, grade and rank per case.

Every export (workbook, CSV, JSON, the 公示 notice) is built from these rows, so they all
say the same thing. Nothing is scored here: the scores, grades and ranks are those of
``Campaign.results()`` (:class:`~reviewflow.scoring.CaseResult`, read from the sealed
events), the counts are keyed by the options of the policy's scale, and who and which
stage come from each case's sealed events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from reviewflow.model import Case
from reviewflow.scoring import CaseResult, GradeScale, ScoreResult

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign

__all__ = ["OPTIONS", "ResultRow", "collect_results", "rank_rows", "rows_from_cases"]

#: The seed's vote options (its scale): key, Chinese label, points.
OPTIONS: tuple[tuple[str, str, int], ...] = tuple(
    (level.key, level.label, int(level.points)) for level in GradeScale.default().levels)


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


def _counts(counts: Mapping[str, Any], scale: GradeScale) -> dict[str, int]:
    """The counts keyed by the scale's option keys (every option, 0 when absent)."""
    out = dict.fromkeys(scale.keys, 0)
    for name, n in counts.items():
        key = scale.key_of(name) if name in scale else name
        if isinstance(n, int) and not isinstance(n, bool):
            out[key] = out.get(key, 0) + n
    return out


def _vote_part(score: ScoreResult) -> ScoreResult:
    """The part of a score that holds the vote's counts (the score itself, or the vote
    channel of a composite score)."""
    if score.counts or not score.parts:
        return score
    return next((p for p in score.parts.values() if p.counts), score)


def _amended(case: Case) -> tuple[str, ...]:
    comments = case.data.get("comments")
    if not isinstance(comments, Mapping):
        return ()
    return tuple(sorted(ch for ch, c in comments.items() if isinstance(c, Mapping) and c.get("earlier")))


def _row(case: Case, result: CaseResult | None, scale: GradeScale) -> ResultRow:
    """One case's row: from its result when it has one, else unscored with its recorded counts."""
    if result is None:
        vote = case.data.get("vote")
        counts = _counts(vote, scale) if isinstance(vote, Mapping) else {}
        valid = sum(counts.values())
    else:
        part = _vote_part(result.score)
        counts, valid = _counts(part.counts, scale), part.valid
    return ResultRow(
        amended=_amended(case),
        case_id=case.case_id,
        organization=case.organization,
        secretary=case.secretary.name or case.secretary.id,
        stage=case.stage.value,
        counts=counts,
        valid=valid,
        score=None if result is None else result.score.value,
        rounded=None if result is None else result.score.rounded,
        grade="" if result is None else (result.grade.label or result.grade.key),
        rank=None if result is None else result.rank,
        follow_ups=() if result is None else tuple(result.follow_ups),
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


def rows_from_cases(cases: Iterable[Case], results: Iterable[CaseResult] = (), *,
                    scale: GradeScale | None = None, places: int | None = None) -> list[ResultRow]:
    """Build the rows of ``cases`` from their ``results`` (``Campaign.results()``), ranked
    as the results rank them; a case without a result is unscored (its recorded counts are
    shown). Counts are keyed by ``scale``'s options (default: the seed's). ``places`` is
    not used (each result carries its rounding); it is accepted so older calls still run."""
    del places
    scale = scale or GradeScale.default()
    by_case = {r.case_id: r for r in results}
    rows = [_row(case, by_case.get(case.case_id), scale) for case in cases]
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.case_id))


def collect_results(campaign: Campaign) -> list[ResultRow]:
    """Return the campaign's results, one ranked row per case.

    Its cases as their sealed events say (who, which stage) and the scores, grades and
    ranks of ``Campaign.results()``, itself read from the sealed events; nothing is scored
    here. Counts are keyed by the options of the campaign policy's scale.
    """
    from reviewflow._sealed import sealed_cases

    # who, the stage and the results from the sealed record, never the case rows
    return rows_from_cases(sealed_cases(campaign.store, campaign.id), campaign.results(),
                           scale=campaign.policy.scoring.scale)
