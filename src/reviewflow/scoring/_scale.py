"""The grade scale of the satisfaction vote and the score of one vote, with its workings."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from reviewflow.exceptions import PolicyError, ScoringError
from reviewflow.scoring._numbers import Rounding, _decimal, _fmt, _num, _policy_number

# --------------------------------------------------------------------------- the scale


@attrs.frozen(kw_only=True)
class ScaleLevel:
    """One option on the ballot: a key, its Chinese label and its points.

    ``in_denominator=False`` marks an option outside the denominator (such as 不了解,
    don't know): counted and shown, but neither scored nor a valid ballot for the score.
    An option with 0 points and ``in_denominator=True`` is valid and scores nothing (差).
    """

    key: str
    label: str
    points: Decimal = attrs.field(converter=_policy_number)
    in_denominator: bool = True


@attrs.frozen(kw_only=True)
class GradeScale:
    """The options of the satisfaction vote with their points; the seed's is the default.

    Options are looked up by key or by Chinese label (``"good"`` or ``"好"``).
    """

    levels: tuple[ScaleLevel, ...]
    #: A display name only (not compared, not stored in policy files).
    name: str = attrs.field(default="", eq=False)
    _index: Mapping[str, ScaleLevel] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        index: dict[str, ScaleLevel] = {}
        if not self.levels:
            raise PolicyError("a grade scale needs at least one option", field="scoring.scale")
        for i, level in enumerate(self.levels):
            where = f"scoring.scale[{i}]"
            if not level.key or not isinstance(level.key, str):
                raise PolicyError("each option needs a key", field=f"{where}.key")
            for name in {level.key, level.label} - {""}:
                if name in index:
                    raise PolicyError(
                        f"option name {name!r} is used twice; keys and labels must be unique",
                        field=where,
                    )
                index[name] = level
            if level.points < 0:
                raise PolicyError("points must not be negative", field=f"{where}.points")
            if not level.in_denominator and level.points != 0:
                raise PolicyError(
                    f"option {level.key!r} is outside the denominator, so it cannot score "
                    f"points; set points = 0 or counted = true",
                    field=f"{where}.points",
                )
        if not any(level.in_denominator for level in self.levels):
            raise PolicyError(
                "every option is outside the denominator; at least one must count",
                field="scoring.scale",
            )
        object.__setattr__(self, "_index", index)

    @classmethod
    def default(cls) -> GradeScale:
        """Return the seed's scale: 好 100, 较好 80, 一般 60, 差 0."""
        return _SEED_SCALE

    @classmethod
    def five_level(cls) -> GradeScale:
        """Return the 5-level satisfaction scale 很满意 100 / 满意 80 / 基本满意 60 /
        不太满意 30 / 不满意 0 (the weighted point-assignment method)."""
        return cls(name="五级满意度", levels=(
            ScaleLevel(key="very_satisfied", label="很满意", points=100),
            ScaleLevel(key="satisfied", label="满意", points=80),
            ScaleLevel(key="basically_satisfied", label="基本满意", points=60),
            ScaleLevel(key="not_quite_satisfied", label="不太满意", points=30),
            ScaleLevel(key="dissatisfied", label="不满意", points=0),
        ))

    @property
    def keys(self) -> tuple[str, ...]:
        """The option keys, in scale order."""
        return tuple(level.key for level in self.levels)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._index

    def level(self, name: str) -> ScaleLevel:
        """Return the option named by key or label; raise ScoringError if there is none."""
        try:
            return self._index[name]
        except (KeyError, TypeError):
            known = ", ".join(f"{lv.key} ({lv.label})" for lv in self.levels)
            raise ScoringError(f"unknown option {name!r}; options are {known}") from None

    def key_of(self, name: str) -> str:
        """Return the key of the option named by key or label."""
        return self.level(name).key

    def normalize(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Return counts keyed by option key, every option present, checked.

        Raises ScoringError for an unknown option, a count that is not a whole number
        or is negative, or an option given twice (by key and by label).
        """
        out = dict.fromkeys(self.keys, 0)
        seen: dict[str, str] = {}
        for name, n in counts.items():
            key = self.key_of(name)
            if key in seen:
                raise ScoringError(
                    f"option {key!r} is given twice (as {seen[key]!r} and {name!r}); give it once"
                )
            seen[key] = name
            if not isinstance(n, int) or isinstance(n, bool):
                raise ScoringError(f"count for {name!r} must be a whole number, got {n!r}")
            if n < 0:
                raise ScoringError(f"count for {name!r} must not be negative, got {n}")
            out[key] = n
        return out

    def to_json(self) -> list[dict[str, Any]]:
        """Return the scale as plain data."""
        return [
            {"key": lv.key, "label": lv.label, "points": _num(lv.points),
             "counted": lv.in_denominator}
            for lv in self.levels
        ]

    @classmethod
    def from_json(cls, data: Any, field: str = "scoring.scale") -> GradeScale:
        """Build a scale from policy-file data (a list of ``{key, label, points, counted}``)."""
        if not isinstance(data, list | tuple):
            raise PolicyError("the scale must be a list of options", field=field)
        levels = []
        for i, item in enumerate(data):
            where = f"{field}[{i}]"
            if not isinstance(item, Mapping) or "key" not in item or "points" not in item:
                raise PolicyError("each option needs key and points (and a label)", field=where)
            try:
                levels.append(ScaleLevel(
                    key=str(item["key"]), label=str(item.get("label", "")),
                    points=item["points"], in_denominator=bool(item.get("counted", True)),
                ))
            except PolicyError as exc:
                raise PolicyError(str(exc), field=f"{where}.points") from None
        return cls(levels=tuple(levels))


_SEED_SCALE = GradeScale(name="四级满意度", levels=(
    ScaleLevel(key="good", label="好", points=100),
    ScaleLevel(key="fairly_good", label="较好", points=80),
    ScaleLevel(key="average", label="一般", points=60),
    ScaleLevel(key="poor", label="差", points=0),
))


# --------------------------------------------------------------------------- one score


@attrs.frozen(kw_only=True)
class ScoreResult:
    """A score with its workings: ``value`` (exact), ``rounded`` (for presentation),
    and :meth:`explain`.

    ``fraction`` is the exact rational value; ``value`` is the same as a Decimal (exact
    whenever the division terminates, else to 28 significant digits).
    """

    fraction: Fraction
    rounding: Rounding
    #: The formula with the numbers filled in, and what went into it, one line each.
    workings: tuple[str, ...]
    #: Counts by option key (vote scores), empty for other scores.
    counts: Mapping[str, int] = attrs.field(factory=dict)
    #: The number of ballots in the denominator (vote scores), else 0.
    valid: int = 0
    #: Per-channel results of a composite score, by channel key.
    parts: Mapping[str, ScoreResult] = attrs.field(factory=dict)

    @property
    def value(self) -> Decimal:
        """The unrounded score."""
        return _decimal(self.fraction)

    @property
    def rounded(self) -> Decimal:
        """The score rounded once by the declared rule (default 2 places, half-up)."""
        return self.rounding.apply(self.fraction)

    def explain(self) -> str:
        """Say how the score was computed: counts, formula with numbers, rounding."""
        lines = list(self.workings)
        lines.append(f"rounded: {self.rounded} ({self.rounding.describe()})")
        return "\n".join(lines)


def _vote_fraction(norm: Mapping[str, int], scale: GradeScale) -> tuple[Fraction, int]:
    # Sum in Decimal (exact for the policy's decimal points and integer counts), and
    # build one Fraction at the end: a Fraction per level costs more than the vote.
    points = Decimal(0)
    valid = 0
    for level in scale.levels:
        n = norm[level.key]
        if level.in_denominator:
            valid += n
            points += level.points * n
    if valid == 0:
        raise ScoringError(
            "no valid ballots: a score needs at least one ballot for a counted option "
            "(有效票数为0); record the vote's counts first"
        )
    return Fraction(points) / valid, valid


def satisfaction_score(counts: Mapping[str, int], scale: GradeScale | None = None) -> Decimal:
    """Return the satisfaction score (好×100 + 较好×80 + 一般×60 + 差×0) ÷ valid ballots, unrounded.

    ``counts`` maps each option (key or Chinese label) to its number of ballots; options
    left out count 0. The result is exact whenever the division terminates. Raises
    :class:`~reviewflow.exceptions.ScoringError` for an unknown option, a negative count,
    or no valid ballots. Round for presentation with :func:`score` (``.rounded``).
    """
    scale = scale or _SEED_SCALE
    value, _ = _vote_fraction(scale.normalize(counts), scale)
    return _decimal(value)


def score(
    counts: Mapping[str, int],
    scale: GradeScale | None = None,
    *,
    rounding: Rounding | None = None,
) -> ScoreResult:
    """Return the satisfaction score of one vote with its workings (see :class:`ScoreResult`)."""
    scale = scale or _SEED_SCALE
    rounding = rounding or _DEFAULT_ROUNDING
    norm = scale.normalize(counts)
    value, valid = _vote_fraction(norm, scale)
    shown = [lv for lv in scale.levels if lv.in_denominator]
    outside = [lv for lv in scale.levels if not lv.in_denominator]
    count_text = ", ".join(f"{lv.label or lv.key} {norm[lv.key]}" for lv in scale.levels)
    terms = " + ".join(f"{lv.label or lv.key} {norm[lv.key]}×{_fmt(lv.points)}" for lv in shown)
    total = sum(Fraction(lv.points) * norm[lv.key] for lv in shown)
    workings = [f"counts: {count_text} (valid {valid})"]
    if outside:
        names = ", ".join(f"{lv.label or lv.key} {norm[lv.key]}" for lv in outside)
        workings.append(f"outside the denominator: {names}")
    workings.append(
        f"score = ({terms}) ÷ {valid} = {_fmt(total)} ÷ {valid} = {_fmt(_decimal(value))}"
    )
    return ScoreResult(fraction=value, rounding=rounding, workings=tuple(workings),
                       counts=norm, valid=valid)


_DEFAULT_ROUNDING = Rounding()
