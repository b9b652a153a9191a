"""Grades (等次), vetoes, quotas and ranks of a campaign's cases, one by one or as a fast table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from reviewflow.exceptions import ScoringError
from reviewflow.scoring._channels import composite_score
from reviewflow.scoring._numbers import _fmt
from reviewflow.scoring._policy import ScoringPolicy
from reviewflow.scoring._rules import GradeBand
from reviewflow.scoring._scale import ScoreResult, score

#: Follow-up obligations with a Chinese name (any other string is allowed as it is).
OBLIGATION_LABELS: Mapping[str, str] = {
    "talk": "约谈",
    "warning_talk": "诫勉谈话",
    "rectification_list": "整改清单",
    "special_report": "专题报告",
}


# --------------------------------------------------------------------------- grading


@attrs.frozen(kw_only=True)
class CaseResult:
    """One case's result in a campaign: score, grade (等次), rank and follow-up."""

    case_id: str
    score: ScoreResult
    #: The grade the score's band gives, before vetoes and quotas.
    band: GradeBand
    #: The grade after vetoes and quotas.
    grade: GradeBand
    rank: int
    #: What changed the grade (a veto, a quota), in words; empty if nothing did.
    adjustments: tuple[str, ...] = ()
    #: Obligations the grade brings (``talk``, ``rectification_list``, ...).
    follow_ups: tuple[str, ...] = ()
    of: int = 0

    def explain(self) -> str:
        """Say how the result came about: score workings, rounding, band, veto/quota, rank."""
        lines = [self.score.explain()]
        lines.append(
            f"band: {self.band.label or self.band.key} (from {_fmt(self.band.min_score)})"
        )
        lines.extend(self.adjustments)
        lines.append(f"grade: {self.grade.label or self.grade.key}")
        lines.append(f"rank: {self.rank} of {self.of} (ties share a rank)")
        if self.follow_ups:
            names = ", ".join(
                f"{o} ({OBLIGATION_LABELS[o]})" if o in OBLIGATION_LABELS else o
                for o in self.follow_ups
            )
            lines.append(f"follow-up: {names}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data (scores as strings)."""
        return {
            "case_id": self.case_id,
            "score": str(self.score.value),
            "rounded": str(self.score.rounded),
            "band": self.band.key,
            "grade": self.grade.key,
            "grade_label": self.grade.label,
            "rank": self.rank,
            "of": self.of,
            "adjustments": list(self.adjustments),
            "follow_ups": list(self.follow_ups),
            "counts": dict(self.score.counts),
            "valid": self.score.valid,
        }


def rank_competition(keys: Sequence[Any]) -> list[int]:
    """Return competition ranks for scores, best (highest) first, ties shared: 1, 2, 2, 4.

    >>> rank_competition([90, 85, 85, 70])
    [1, 2, 2, 4]
    """
    counts = Counter(keys)
    rank_of: dict[Any, int] = {}
    better = 0
    for key in sorted(counts, reverse=True):
        rank_of[key] = better + 1
        better += counts[key]
    return [rank_of[k] for k in keys]


def _thresholds(policy: ScoringPolicy, exact: bool) -> list[Any]:
    """Band minimums in the key domain (ascending, for ``bisect``), best band last."""
    out: list[Any] = []
    scale = 10**policy.places
    for b in reversed(policy.bands):
        if exact:
            out.append(Fraction(b.min_score))
        else:
            # a rounded key r (= score × 10**places) is in the band iff r >= ceil(min × 10**p)
            f = Fraction(b.min_score) * scale
            out.append(-((-f.numerator) // f.denominator))
    return out


def _grade_and_rank(
    keys: Sequence[Any],
    policy: ScoringPolicy,
    caps: Mapping[int, tuple[int, str]] | None = None,
) -> tuple[list[int], list[int], list[int], dict[int, list[str]]]:
    """Return (band index, grade index, rank) per key, and adjustments by position.

    Grade indexes count from the best band (0). ``caps`` maps a position to the best
    grade index a veto allows, with the veto's description.
    """
    import bisect

    exact = policy.compare == "exact"
    thresholds = _thresholds(policy, exact)
    nb = len(policy.bands)
    distinct = set(keys)
    grade_of_key = {k: nb - bisect.bisect_right(thresholds, k) for k in distinct}
    bands = [grade_of_key[k] for k in keys]
    grades = list(bands)
    notes: dict[int, list[str]] = {}
    labels = [b.label or b.key for b in policy.bands]
    if caps:
        for i, (cap, text) in caps.items():
            if grades[i] < cap:
                notes.setdefault(i, []).append(
                    f"veto: {text}: grade capped at {labels[cap]} (was {labels[grades[i]]})"
                )
                grades[i] = cap
    n = len(keys)
    quotas = sorted(policy.quotas, key=lambda q: policy.band_keys.index(q.grade))
    for q in quotas:
        gi = policy.band_keys.index(q.grade)
        members = [i for i, g in enumerate(grades) if g == gi]
        allowed = q.allowed(n)
        if len(members) <= allowed:
            continue
        per_key = Counter(keys[i] for i in members)
        kept = 0
        cut = None  # keys <= cut move down
        for k in sorted(per_key, reverse=True):
            if kept + per_key[k] > allowed:
                if q.ties == "keep" and kept < allowed:
                    kept += per_key[k]
                    continue
                cut = k
                break
            kept += per_key[k]
        if cut is None:
            continue
        share = f"{q.max_share} of {n}" if q.max_share is not None else ""
        limit = f"at most {allowed}" + (f" ({share})" if share else "")
        for i in members:
            if keys[i] <= cut:
                grades[i] = gi + 1
                notes.setdefault(i, []).append(
                    f"quota: {labels[gi]} is limited to {limit}; the lowest scores above "
                    f"the quota move down one grade, ties at the cut together: "
                    f"{labels[gi]} -> {labels[gi + 1]}"
                )
    return bands, grades, rank_competition(keys), notes


def _caps(
    policy: ScoringPolicy, conditions: Mapping[int, Iterable[str]]
) -> dict[int, tuple[int, str]]:
    by_condition = {v.condition: v for v in policy.vetoes}
    out: dict[int, tuple[int, str]] = {}
    for i, conds in conditions.items():
        for c in conds:
            veto = by_condition.get(c)
            if veto is None:
                known = ", ".join(by_condition) or "none"
                raise ScoringError(
                    f"unknown veto condition {c!r}; the policy declares: {known}"
                )
            cap = policy.band_keys.index(veto.cap)
            text = f"{veto.label or veto.condition}"
            if i not in out or cap > out[i][0]:
                out[i] = (cap, text)
    return out


def _key(result: ScoreResult, policy: ScoringPolicy) -> Any:
    if policy.compare == "exact":
        return result.fraction
    return policy.rounding_rule.scaled(result.fraction.numerator, result.fraction.denominator)


def _follow(policy: ScoringPolicy, grade: GradeBand) -> tuple[str, ...]:
    return tuple(policy.follow_ups.get(grade.key, ()))


def grade_cases(
    inputs: Mapping[str, Mapping[str, Any]],
    policy: ScoringPolicy | None = None,
    *,
    conditions: Mapping[str, Iterable[str]] | None = None,
) -> list[CaseResult]:
    """Score, grade and rank every case of a campaign; return results in input order.

    ``inputs`` maps each case id to its channel inputs (see :func:`composite_score`);
    a bare counts mapping is taken as the input of the policy's single vote channel.
    ``conditions`` maps a case id to the veto conditions that hold for it.
    Vetoes apply first (a capped case does not use up a quota), then quotas, best grade
    first. Ranks follow the scores (ties shared), not the grades.
    """
    policy = policy or ScoringPolicy()
    ids = list(inputs)
    vote_keys = [c.key for c in policy.channels if c.kind == "vote"]
    channel_keys = {c.key for c in policy.channels}
    results = []
    for cid in ids:
        value = inputs[cid]
        if len(vote_keys) == 1 and value and not set(value) & channel_keys:
            value = {vote_keys[0]: value}
        try:
            results.append(composite_score(value, policy))
        except ScoringError as exc:
            raise ScoringError(f"case {cid!r}: {exc}") from None
    keys = [_key(r, policy) for r in results]
    position = {cid: i for i, cid in enumerate(ids)}
    conds: dict[int, Iterable[str]] = {}
    for cid, cs in (conditions or {}).items():
        if cid not in position:
            raise ScoringError(f"veto conditions given for unknown case {cid!r}")
        conds[position[cid]] = cs
    bands, grades, ranks, notes = _grade_and_rank(keys, policy, _caps(policy, conds))
    n = len(ids)
    return [
        CaseResult(
            case_id=cid, score=results[i], band=policy.bands[bands[i]],
            grade=policy.bands[grades[i]], rank=ranks[i], adjustments=tuple(notes.get(i, ())),
            follow_ups=_follow(policy, policy.bands[grades[i]]), of=n,
        )
        for i, cid in enumerate(ids)
    ]


# --------------------------------------------------------------------------- the fast table


@attrs.define(slots=True, eq=False)
class ScoreTable:
    """Scores, grades and ranks of many cases from their vote tallies, kept as columns.

    Built by :func:`score_table` for campaigns of any size (a million cases in about a
    second); :meth:`result` gives the full :class:`CaseResult` with ``explain()`` for one.
    ``keys`` are the compared scores: rounded scores × 10**places as ints (the default),
    or exact fractions with ``compare = "exact"``.
    """

    policy: ScoringPolicy
    case_ids: Sequence[str]
    tallies: Sequence[Sequence[int]]
    keys: list[Any]
    bands: list[int]
    grades: list[int]
    ranks: list[int]
    notes: dict[int, list[str]]
    conditions: dict[int, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.keys)

    def score(self, i: int) -> Decimal:
        """Return case ``i``'s rounded score."""
        if self.policy.compare == "exact":
            return self.policy.rounding_rule.apply(self.keys[i])
        return Decimal(self.keys[i]).scaleb(-self.policy.places)

    def scores(self) -> list[Decimal]:
        """Return every rounded score, in case order."""
        return [self.score(i) for i in range(len(self.keys))]

    def grade(self, i: int) -> GradeBand:
        """Return case ``i``'s grade after vetoes and quotas."""
        return self.policy.bands[self.grades[i]]

    def result(self, i: int) -> CaseResult:
        """Return case ``i``'s full result, with workings for ``explain()``."""
        scale = self.policy.scale
        counts = dict(zip(scale.keys, self.tallies[i], strict=True))
        return CaseResult(
            case_id=self.case_ids[i],
            score=score(counts, scale, rounding=self.policy.rounding_rule),
            band=self.policy.bands[self.bands[i]], grade=self.grade(i), rank=self.ranks[i],
            adjustments=tuple(self.notes.get(i, ())),
            follow_ups=_follow(self.policy, self.grade(i)), of=len(self.keys),
        )


class _Ids(Sequence[str]):
    """Case ids ``"0"``, ``"1"``, ... without building a million strings."""

    def __init__(self, n: int) -> None:
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [str(j) for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return str(i % self._n)


def score_table(
    tallies: Sequence[Sequence[int]],
    policy: ScoringPolicy | None = None,
    *,
    case_ids: Sequence[str] | None = None,
    conditions: Mapping[int, Iterable[str]] | None = None,
) -> ScoreTable:
    """Score, grade and rank many cases from their vote tallies, fast.

    ``tallies[i]`` holds case ``i``'s counts per option in scale order (for the seed:
    好, 较好, 一般, 差). The policy's vote must be its only scored channel. Results equal
    :func:`grade_cases` on the same counts. ``conditions`` maps a position to the veto
    conditions that hold for it. Raises ScoringError naming the first case without valid
    ballots or with a negative count.
    """
    policy = policy or ScoringPolicy()
    scored = [c for c in policy.channels if c.weight > 0]
    if len(scored) != 1 or scored[0].kind != "vote":
        raise ScoringError(
            "score_table needs a policy whose only scored channel is the vote; use grade_cases"
        )
    ids: Sequence[str] = case_ids if case_ids is not None else _Ids(len(tallies))
    if len(ids) != len(tallies):
        raise ScoringError(f"{len(ids)} case ids for {len(tallies)} tallies")
    levels = policy.scale.levels
    pts = [Fraction(lv.points) for lv in levels]
    common = 1
    for p in pts:
        common = common * p.denominator // _gcd(common, p.denominator)
    ipts = [int(p * common) for p in pts]
    mask = [lv.in_denominator for lv in levels]
    nlev = len(levels)
    exact = policy.compare == "exact"
    rule = policy.rounding_rule
    keys: list[Any] = []
    append = keys.append
    try:
        if (not exact and nlev == 4 and all(mask) and common == 1
                and rule.mode == "half_up"):
            # The seed's shape: integer half-up, floor((2·num·10^p + den) / (2·den)).
            a, b, c, d = ipts
            m = 2 * 10**policy.places
            for t0, t1, t2, t3 in tallies:
                den = t0 + t1 + t2 + t3
                if t0 < 0 or t1 < 0 or t2 < 0 or t3 < 0:
                    raise ValueError
                append((m * (a * t0 + b * t1 + c * t2 + d * t3) + den) // (2 * den))
        else:
            for t in tallies:
                if len(t) != nlev or min(t) < 0:
                    raise ValueError
                num = sum(p * x for p, x in zip(ipts, t, strict=True))
                den = sum(x for x, counted in zip(t, mask, strict=True) if counted) * common
                append(Fraction(num, den) if exact else rule.scaled(num, den))
    except (ValueError, ZeroDivisionError, TypeError):
        i = len(keys)
        bad = list(tallies[i]) if i < len(tallies) else None
        raise ScoringError(
            f"case {ids[i]!r} (position {i}): tally {bad} has a negative count, the wrong "
            f"number of options (the scale has {nlev}), or no valid ballots"
        ) from None
    conds = {i: tuple(c) for i, c in (conditions or {}).items()}
    bands, grades, ranks, notes = _grade_and_rank(keys, policy, _caps(policy, conds))
    return ScoreTable(policy=policy, case_ids=ids, tallies=tallies, keys=keys, bands=bands,
                      grades=grades, ranks=ranks, notes=notes, conditions=conds)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a
