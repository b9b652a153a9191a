"""Scores, grades and ranks for the three evaluations (三评), as pure functions over policy data.

The seed scores the on-site vote as (好×100 + 较好×80 + 一般×60 + 差×0) ÷ valid ballots.
Everything in that sentence is policy here: the grade scale (:class:`GradeScale`), the
rounding rule, the evaluation channels and their weights (:class:`Channel`), the score
bands that give a grade (等次, :class:`GradeBand`), quotas (:class:`Quota`), vetoes
(:class:`Veto`) and the follow-up a grade brings. Scores are exact (a :class:`~fractions.Fraction`
underneath, shown as :class:`~decimal.Decimal`) and rounded once, for presentation.

The vote rules (:class:`VoteRules`) and the publication rules (:class:`PublicationRules`)
live here too, so that one policy field, ``Policy.scoring``, carries all of 三评.
"""

from __future__ import annotations

import decimal
import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import attrs

from reviewflow.exceptions import PolicyError, ScoringError

__all__ = [
    "CaseResult",
    "Channel",
    "GradeBand",
    "GradeScale",
    "PublicationRules",
    "Quota",
    "Rounding",
    "ScaleLevel",
    "ScoreResult",
    "ScoreTable",
    "ScoringPolicy",
    "Veto",
    "VoteRules",
    "composite_score",
    "grade_cases",
    "rank_competition",
    "satisfaction_score",
    "score",
    "score_table",
]

Number = int | Decimal | Fraction | str

_MODES = ("half_up", "half_even", "half_down", "down", "up")
_MODE_TEXT = {
    "half_up": "half-up", "half_even": "half-even", "half_down": "half-down",
    "down": "towards zero", "up": "away from zero",
}

#: Follow-up obligations with a Chinese name (any other string is allowed as it is).
OBLIGATION_LABELS: Mapping[str, str] = {
    "talk": "约谈",
    "warning_talk": "诫勉谈话",
    "rectification_list": "整改清单",
    "special_report": "专题报告",
}

#: The seed's voter categories (参会人员类别).
DEFAULT_CATEGORIES: Mapping[str, str] = {
    "party_member": "党员",
    "cadre": "干部",
    "public": "群众",
    "parent": "家长代表",
    "teacher": "教师代表",
}


# --------------------------------------------------------------------------- numbers


def _to_decimal(value: Any, what: str, error: type[Exception] = ScoringError) -> Decimal:
    """Convert an int, Decimal, Fraction-free string (or, in policy files only, a float)."""
    if isinstance(value, bool):
        raise error(f"{what} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, int):
        out = Decimal(value)
    elif isinstance(value, str):
        try:
            out = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise error(f"{what} must be a number, got {value!r}") from None
    elif isinstance(value, float) and error is PolicyError:
        out = Decimal(repr(value))  # a TOML literal such as 92.5, taken as written
    else:
        raise error(f"{what} must be an int, a Decimal or a numeric string, got {value!r}")
    if not out.is_finite():
        raise error(f"{what} must be a finite number, got {value!r}")
    return out


def _to_fraction(value: Any, field: str | None) -> Fraction:
    """Read a share from policy data: a fraction string like '2/3', a decimal, or an int."""
    if isinstance(value, Fraction):
        return value
    message = f"must be a fraction like '2/3' or a decimal like 0.5, got {value!r}"
    if isinstance(value, str) and "/" in value:
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise PolicyError(message, field=field) from None
    try:
        return Fraction(_to_decimal(value, "a share", PolicyError))
    except PolicyError:
        raise PolicyError(message, field=field) from None


def _policy_number(value: Any) -> Decimal:
    """Convert a number from policy data (points, weights, band minimums) to Decimal."""
    return _to_decimal(value, "a policy number", PolicyError)


def _share(value: Any) -> Fraction | None:
    """Convert an optional share given as a Fraction, '2/3', a Decimal or an int."""
    return None if value is None else _to_fraction(value, None)


def _decimal(f: Fraction) -> Decimal:
    """Return a Fraction as a Decimal: exact when it terminates, else to 28 digits."""
    with decimal.localcontext() as ctx:
        ctx.prec = 28
        ctx.rounding = decimal.ROUND_HALF_EVEN
        return Decimal(f.numerator) / Decimal(f.denominator)


def _num(value: Decimal) -> int | str:
    """Return a policy number for plain data: an int when whole, else its exact text."""
    return int(value) if value == value.to_integral_value() else _fmt(value)


def _fmt(value: Decimal | Fraction | int) -> str:
    """Format a number for explanations without exponent notation."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        value = _decimal(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


@attrs.frozen(kw_only=True)
class Rounding:
    """How a score is rounded for presentation: ``places`` decimals, by ``mode``.

    Modes: ``half_up`` (the default, 四舍五入), ``half_even``, ``half_down``, ``down``, ``up``.
    Rounding is computed from the exact fraction, so a value never rounds twice.
    """

    places: int = 2
    mode: str = "half_up"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.places, int) or isinstance(self.places, bool) \
                or not 0 <= self.places <= 6:
            raise PolicyError("places must be a whole number from 0 to 6", field="scoring.places")
        if self.mode not in _MODES:
            raise PolicyError(
                f"unknown rounding mode {self.mode!r}; use one of {', '.join(_MODES)}",
                field="scoring.rounding",
            )

    def scaled(self, numerator: int, denominator: int) -> int:
        """Return the rounded value times 10**places, as an int (denominator > 0)."""
        sign = -1 if numerator < 0 else 1
        q, r = divmod(abs(numerator) * 10**self.places, denominator)
        mode = self.mode
        if r:
            if mode == "up":
                q += 1
            elif mode == "half_up":
                q += 2 * r >= denominator
            elif mode == "half_down":
                q += 2 * r > denominator
            elif mode == "half_even":
                q += 2 * r > denominator or (2 * r == denominator and q % 2 == 1)
        return int(sign * q)

    def apply(self, value: Fraction | Decimal | int) -> Decimal:
        """Return ``value`` rounded by this rule, as a Decimal with ``places`` decimals."""
        f = Fraction(value)
        return Decimal(self.scaled(f.numerator, f.denominator)).scaleb(-self.places)

    def describe(self) -> str:
        """Say the rule in words: ``2 places, half-up``."""
        return f"{self.places} places, {_MODE_TEXT[self.mode]}"


@functools.lru_cache(maxsize=64)
def _rounding(places: int, mode: str) -> Rounding:
    return Rounding(places=places, mode=mode)


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


# --------------------------------------------------------------------------- channels


_CHANNEL_KINDS = ("vote", "comment", "number")


@attrs.frozen(kw_only=True)
class Channel:
    """One evaluation channel (评): a vote, a comment with a rating, or a host's number.

    ``weight`` is its share of the composite score; the weights of a policy add up to
    100 (or to 1). A channel of weight 0 is recorded but does not score (the seed's two
    comments). Scores of every channel are on the 0–``max_points`` scale (100).
    """

    key: str
    label: str = ""
    kind: str = "vote"
    weight: Decimal = attrs.field(converter=_policy_number)
    max_points: Decimal = attrs.field(default=Decimal(100), converter=_policy_number)
    #: For a comment channel: the role whose comment (点评) it rates.
    role: str = ""


def _channel_score(
    channel: Channel, value: Any, policy: ScoringPolicy
) -> ScoreResult:
    name = channel.label or channel.key
    if channel.kind == "vote":
        if isinstance(value, ScoreResult):
            return value
        if not isinstance(value, Mapping):
            raise ScoringError(
                f"channel {channel.key!r} ({name}) is a vote: give its counts per option"
            )
        return score(value, policy.scale, rounding=policy.rounding_rule)
    rating: Fraction
    if channel.kind == "comment" and isinstance(value, Mapping):
        value = value.get("rating")
        if value is None:
            raise ScoringError(f"the comment for channel {channel.key!r} ({name}) has no rating")
    if channel.kind == "comment" and value in policy.scale:
        level = policy.scale.level(value)
        rating = Fraction(level.points)
        text = f"{name}: rated {level.label or level.key} = {_fmt(level.points)} points"
    else:
        rating = Fraction(_to_decimal(value, f"the score for channel {channel.key!r}"))
        text = f"{name}: {_fmt(rating)} points"
    if not 0 <= rating <= Fraction(channel.max_points):
        raise ScoringError(
            f"the score for channel {channel.key!r} ({name}) must be between 0 and "
            f"{_fmt(channel.max_points)}, got {_fmt(rating)}"
        )
    return ScoreResult(fraction=rating, rounding=policy.rounding_rule, workings=(text,))


def composite_score(inputs: Mapping[str, Any], policy: ScoringPolicy | None = None) -> ScoreResult:
    """Return the weighted score over the policy's channels: Σ weight × score ÷ Σ weight.

    ``inputs`` maps each channel key to its input: counts per option for a vote channel
    (or a :class:`ScoreResult`), a rating (a scale option or a number) for a comment, a
    number for a host channel. Channels of weight 0 may be left out; a scored channel
    may not. Channel scores are not rounded before they are combined.
    """
    policy = policy or ScoringPolicy()
    unknown = set(inputs) - {c.key for c in policy.channels}
    if unknown:
        known = ", ".join(c.key for c in policy.channels)
        raise ScoringError(f"unknown channel {sorted(unknown)[0]!r}; channels are {known}")
    scored = [c for c in policy.channels if c.weight > 0]
    if len(scored) == 1 and scored[0].weight == policy.weight_total:
        only = scored[0]
        if only.key not in inputs:
            raise ScoringError(f"no input for channel {only.key!r} ({only.label or only.key})")
        return _channel_score(only, inputs[only.key], policy)
    parts: dict[str, ScoreResult] = {}
    total = Fraction(0)
    terms = []
    workings: list[str] = []
    for channel in scored:
        if channel.key not in inputs:
            raise ScoringError(
                f"no input for channel {channel.key!r} ({channel.label or channel.key}), "
                f"which weighs {_fmt(channel.weight)}"
            )
        part = _channel_score(channel, inputs[channel.key], policy)
        parts[channel.key] = part
        workings.extend(part.workings)
        total += Fraction(channel.weight) * part.fraction
        terms.append(f"{_fmt(channel.weight)}×{_fmt(part.value)}")
    value = total / Fraction(policy.weight_total)
    workings.append(
        f"composite = ({' + '.join(terms)}) ÷ {_fmt(policy.weight_total)} = {_fmt(_decimal(value))}"
    )
    return ScoreResult(fraction=value, rounding=policy.rounding_rule, workings=tuple(workings),
                       parts=parts)


# --------------------------------------------------------------------------- grades


@attrs.frozen(kw_only=True)
class GradeBand:
    """A grade (等次) and the lowest score that earns it."""

    key: str
    label: str = ""
    min_score: Decimal = attrs.field(converter=_policy_number)


@attrs.frozen(kw_only=True)
class Quota:
    """At most ``max_share`` of the cases (rounded down), and/or ``max_count`` cases, may get
    ``grade``. The lowest scores above the quota move down one grade; cases tied at the cut
    all move down (``ties="demote"``, so the quota is never exceeded) or all stay
    (``ties="keep"``)."""

    grade: str
    max_share: Fraction | None = attrs.field(default=None, converter=_share)
    max_count: int | None = None
    ties: Literal["demote", "keep"] = "demote"

    def allowed(self, n_cases: int) -> int:
        """Return how many of ``n_cases`` may have the grade."""
        limit = n_cases
        if self.max_share is not None:
            limit = min(limit, int(self.max_share * n_cases))
        if self.max_count is not None:
            limit = min(limit, self.max_count)
        return limit


@attrs.frozen(kw_only=True)
class Veto:
    """When the named ``condition`` holds for a case, its grade is at best ``cap``
    (一票否决 style: e.g. a disciplinary case may not be graded 好)."""

    condition: str
    cap: str
    label: str = ""


@attrs.frozen(kw_only=True)
class VoteRules:
    """Rules of the on-site vote (现场测评): voter categories, validity, quorum, privacy.

    ``blank``: a blank ballot is an abstention (``"abstain"``, outside the denominator) or
    ``"invalid"``. Over-marked and unreadable ballots are always invalid. ``quorum`` is
    the share of eligible voters that must have returned a ballot before the vote may
    close; ``min_grassroots_share`` the least share of returned ballots from the
    ``grassroots`` categories. No per-category result is shown for fewer than
    ``min_group_size`` voters.
    """

    categories: Mapping[str, str] = attrs.field(factory=lambda: dict(DEFAULT_CATEGORIES))
    grassroots: frozenset[str] = frozenset({"public", "parent", "teacher"})
    blank: Literal["abstain", "invalid"] = "abstain"
    quorum: Fraction | None = attrs.field(default=None, converter=_share)
    min_grassroots_share: Fraction | None = attrs.field(default=None, converter=_share)
    min_group_size: int = 5

    def category_label(self, key: str | None) -> str:
        """Return a category's Chinese name (``全体`` for no category)."""
        if key is None:
            return "全体"
        return self.categories.get(key, key)


@attrs.frozen(kw_only=True)
class PublicationRules:
    """How results are published (在一定范围内公布) and fed back (反馈).

    ``scope`` is the default audience when a publication names none; ``publicity_days``
    an optional public-notice period (公示), in calendar days or, with
    ``publicity_working_days``, working days.
    """

    scope: str = ""
    publicity_days: int | None = None
    publicity_working_days: bool = False
    feedback: bool = True


# --------------------------------------------------------------------------- the policy


def _default_channels() -> tuple[Channel, ...]:
    return (
        Channel(key="superior_comment", label="上级党组织书记点评", kind="comment", weight=0,
                role="superior_secretary"),
        Channel(key="delegate_comment", label="上级党组织部门派员点评", kind="comment", weight=0,
                role="department_delegate"),
        Channel(key="vote", label="现场测评", kind="vote", weight=100),
    )


def _default_bands() -> tuple[GradeBand, ...]:
    return (
        GradeBand(key="good", label="好", min_score=90),
        GradeBand(key="fairly_good", label="较好", min_score=80),
        GradeBand(key="average", label="一般", min_score=60),
        GradeBand(key="poor", label="差", min_score=0),
    )


def _default_follow_ups() -> Mapping[str, tuple[str, ...]]:
    return {"average": ("talk",), "poor": ("talk", "rectification_list")}


@attrs.frozen(kw_only=True)
class ScoringPolicy:
    """How the three evaluations become scores, grades, ranks, and published results.

    The defaults are the seed's: the 4-level scale 好100/较好80/一般60/差0, the vote as
    the only scored channel (the two comments are recorded, weight 0), 2 places half-up.
    The seed sets no bands; the default bands (好 ≥ 90, 较好 ≥ 80, 一般 ≥ 60, 差 below)
    and follow-ups (一般: a talk; 差: a talk and a rectification list) are reviewflow's,
    and are policy like the rest.
    """

    scale: GradeScale = attrs.field(factory=GradeScale.default)
    places: int = 2
    rounding: str = "half_up"
    channels: tuple[Channel, ...] = attrs.field(factory=_default_channels, converter=tuple)
    bands: tuple[GradeBand, ...] = attrs.field(factory=_default_bands, converter=tuple)
    quotas: tuple[Quota, ...] = attrs.field(default=(), converter=tuple)
    vetoes: tuple[Veto, ...] = attrs.field(default=(), converter=tuple)
    #: Obligations per grade key, e.g. ``{"poor": ("talk", "rectification_list")}``.
    follow_ups: Mapping[str, tuple[str, ...]] = attrs.field(factory=_default_follow_ups)
    #: Bands, quotas and ranks compare the ``"rounded"`` score (the one published, the
    #: default) or the ``"exact"`` one.
    compare: Literal["rounded", "exact"] = "rounded"
    vote: VoteRules = attrs.field(factory=VoteRules)
    publication: PublicationRules = attrs.field(factory=PublicationRules)

    def __attrs_post_init__(self) -> None:
        _check_policy(self)

    @property
    def rounding_rule(self) -> Rounding:
        """The presentation rounding as a :class:`Rounding`."""
        return _rounding(self.places, self.rounding)

    @property
    def weight_total(self) -> Decimal:
        """The sum of the channel weights (100 or 1)."""
        return sum((c.weight for c in self.channels), Decimal(0))

    def band(self, key: str) -> GradeBand:
        """Return the grade band with this key or label."""
        for b in self.bands:
            if key in (b.key, b.label):
                return b
        raise ScoringError(f"unknown grade {key!r}; grades are {', '.join(self.band_keys)}")

    @property
    def band_keys(self) -> tuple[str, ...]:
        """The grade keys, best first."""
        return tuple(b.key for b in self.bands)

    def to_json(self) -> dict[str, Any]:
        """Return the settings as plain data (the shape :meth:`from_json` reads)."""
        v, p = self.vote, self.publication
        return {
            "places": self.places,
            "rounding": self.rounding,
            "compare": self.compare,
            "scale": self.scale.to_json(),
            "channels": [
                {"key": c.key, "label": c.label, "kind": c.kind, "weight": _num(c.weight),
                 "max_points": _num(c.max_points), "role": c.role}
                for c in self.channels
            ],
            "bands": [
                {"key": b.key, "label": b.label, "min": _num(b.min_score)} for b in self.bands
            ],
            "quotas": [
                {"grade": q.grade, "ties": q.ties}
                | ({"max_share": str(q.max_share)} if q.max_share is not None else {})
                | ({"max_count": q.max_count} if q.max_count is not None else {})
                for q in self.quotas
            ],
            "vetoes": [
                {"condition": x.condition, "cap": x.cap, "label": x.label} for x in self.vetoes
            ],
            "follow_ups": {k: list(v_) for k, v_ in self.follow_ups.items()},
            "vote": {
                "categories": dict(v.categories),
                "grassroots": sorted(v.grassroots),
                "blank": v.blank,
                "quorum": None if v.quorum is None else str(v.quorum),
                "min_grassroots_share": (
                    None if v.min_grassroots_share is None else str(v.min_grassroots_share)
                ),
                "min_group_size": v.min_group_size,
            },
            "publication": {
                "scope": p.scope, "publicity_days": p.publicity_days,
                "publicity_working_days": p.publicity_working_days, "feedback": p.feedback,
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], field: str = "scoring") -> ScoringPolicy:
        """Build the settings from policy-file data; raise PolicyError naming the field."""
        if not isinstance(data, Mapping):
            raise PolicyError("must be a table of settings", field=field)
        try:
            return _from_json(data, field)
        except PolicyError as exc:
            raise _refield(exc, field) from None


def _refield(exc: PolicyError, field: str) -> PolicyError:
    """Re-root an error's field (checks name ``scoring.*``) under the caller's ``field``."""
    old = exc.field or ""
    if field == "scoring" or old.startswith(field) or not old.startswith("scoring"):
        return exc
    message = str(exc).removeprefix(f"{old}: ")
    return PolicyError(message, field=field + old.removeprefix("scoring"))


_TOP_KEYS = frozenset({
    "places", "rounding", "compare", "scale", "channels", "bands", "quotas", "vetoes",
    "follow_ups", "vote", "publication",
})


def _table(data: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise PolicyError("must be a table", field=f"{field}.{key}")
    return value


def _list(data: Mapping[str, Any], key: str, field: str) -> list[Any] | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, list | tuple):
        raise PolicyError("must be a list", field=f"{field}.{key}")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise PolicyError("each entry must be a table", field=f"{field}.{key}[{i}]")
    return list(value)


def _from_json(data: Mapping[str, Any], field: str) -> ScoringPolicy:
    extra = set(data) - _TOP_KEYS
    if extra:
        raise PolicyError(
            f"unknown setting {sorted(extra)[0]!r}; settings are {', '.join(sorted(_TOP_KEYS))}",
            field=f"{field}.{sorted(extra)[0]}",
        )
    kw: dict[str, Any] = {}
    for name in ("places", "rounding", "compare"):
        if name in data:
            kw[name] = data[name]
    if "compare" in kw and kw["compare"] not in ("rounded", "exact"):
        raise PolicyError("compare must be 'rounded' or 'exact'", field=f"{field}.compare")
    if "scale" in data:
        kw["scale"] = GradeScale.from_json(data["scale"], field=f"{field}.scale")
    items = _list(data, "channels", field)
    if items is not None:
        kw["channels"] = tuple(
            _build(Channel, f"{field}.channels[{i}]", key=str(c.get("key", "")),
                   label=str(c.get("label", "")), kind=str(c.get("kind", "vote")),
                   weight=c.get("weight", 0), max_points=c.get("max_points", 100),
                   role=str(c.get("role", "")))
            for i, c in enumerate(items)
        )
    items = _list(data, "bands", field)
    if items is not None:
        kw["bands"] = tuple(
            _build(GradeBand, f"{field}.bands[{i}]", key=str(b.get("key", "")),
                   label=str(b.get("label", "")), min_score=b.get("min", b.get("min_score")))
            for i, b in enumerate(items)
        )
    items = _list(data, "quotas", field)
    if items is not None:
        quotas = []
        for i, q in enumerate(items):
            where = f"{field}.quotas[{i}]"
            share = q.get("max_share")
            quotas.append(_build(
                Quota, where, grade=str(q.get("grade", "")),
                max_share=None if share is None else _to_fraction(share, f"{where}.max_share"),
                max_count=q.get("max_count"), ties=q.get("ties", "demote"),
            ))
        kw["quotas"] = tuple(quotas)
    items = _list(data, "vetoes", field)
    if items is not None:
        kw["vetoes"] = tuple(
            _build(Veto, f"{field}.vetoes[{i}]", condition=str(x.get("condition", "")),
                   cap=str(x.get("cap", "")), label=str(x.get("label", "")))
            for i, x in enumerate(items)
        )
    if "follow_ups" in data:
        fu = _table(data, "follow_ups", field)
        out: dict[str, tuple[str, ...]] = {}
        for grade, obligations in fu.items():
            if isinstance(obligations, str):
                obligations = [obligations]
            if not isinstance(obligations, list | tuple):
                raise PolicyError("must be a list of obligations",
                                  field=f"{field}.follow_ups.{grade}")
            out[str(grade)] = tuple(str(o) for o in obligations)
        kw["follow_ups"] = out
    if "vote" in data:
        kw["vote"] = _vote_rules(_table(data, "vote", field), f"{field}.vote")
    if "publication" in data:
        kw["publication"] = _publication(_table(data, "publication", field),
                                         f"{field}.publication")
    return ScoringPolicy(**kw)


def _build(cls: Any, where: str, **kw: Any) -> Any:
    try:
        return cls(**kw)
    except PolicyError as exc:
        message = str(exc)
        if exc.field:
            message = message.removeprefix(f"{exc.field}: ")
        raise PolicyError(message, field=where) from None
    except (TypeError, ValueError) as exc:
        raise PolicyError(str(exc), field=where) from None


def _vote_rules(data: Mapping[str, Any], field: str) -> VoteRules:
    known = {"categories", "grassroots", "blank", "quorum", "min_grassroots_share",
             "min_group_size"}
    extra = set(data) - known
    if extra:
        raise PolicyError(f"unknown setting {sorted(extra)[0]!r}; settings are "
                          f"{', '.join(sorted(known))}", field=f"{field}.{sorted(extra)[0]}")
    kw: dict[str, Any] = {}
    if "categories" in data:
        cats = data["categories"]
        if not isinstance(cats, Mapping) or not cats:
            raise PolicyError("must be a table of category = label", field=f"{field}.categories")
        kw["categories"] = {str(k): str(v) for k, v in cats.items()}
    if "grassroots" in data:
        g = data["grassroots"]
        if not isinstance(g, list | tuple):
            raise PolicyError("must be a list of categories", field=f"{field}.grassroots")
        kw["grassroots"] = frozenset(str(x) for x in g)
    if "blank" in data:
        kw["blank"] = data["blank"]
    for name in ("quorum", "min_grassroots_share"):
        if data.get(name) is not None:
            kw[name] = _to_fraction(data[name], f"{field}.{name}")
    if "min_group_size" in data:
        kw["min_group_size"] = data["min_group_size"]
    return VoteRules(**kw)


def _publication(data: Mapping[str, Any], field: str) -> PublicationRules:
    known = {"scope", "publicity_days", "publicity_working_days", "feedback"}
    extra = set(data) - known
    if extra:
        raise PolicyError(f"unknown setting {sorted(extra)[0]!r}; settings are "
                          f"{', '.join(sorted(known))}", field=f"{field}.{sorted(extra)[0]}")
    days = data.get("publicity_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
        raise PolicyError("must be a whole number of days, 0 or more",
                          field=f"{field}.publicity_days")
    return PublicationRules(
        scope=str(data.get("scope", "")), publicity_days=days,
        publicity_working_days=bool(data.get("publicity_working_days", False)),
        feedback=bool(data.get("feedback", True)),
    )


def _check_policy(p: ScoringPolicy) -> None:
    p.rounding_rule  # noqa: B018 - building the rule checks places and mode
    if p.compare not in ("rounded", "exact"):
        raise PolicyError("compare must be 'rounded' or 'exact'", field="scoring.compare")
    # channels
    if not p.channels:
        raise PolicyError("at least one evaluation channel is needed", field="scoring.channels")
    seen: set[str] = set()
    for i, c in enumerate(p.channels):
        where = f"scoring.channels[{i}]"
        if not c.key or c.key in seen:
            raise PolicyError(f"channel key {c.key!r} is empty or used twice", field=where)
        seen.add(c.key)
        if c.kind not in _CHANNEL_KINDS:
            raise PolicyError(
                f"unknown channel kind {c.kind!r}; kinds are {', '.join(_CHANNEL_KINDS)}",
                field=f"{where}.kind",
            )
        if c.weight < 0:
            raise PolicyError("a weight must not be negative", field=f"{where}.weight")
        if c.max_points <= 0:
            raise PolicyError("max_points must be above 0", field=f"{where}.max_points")
    total = p.weight_total
    if total not in (1, 100):
        weights = " + ".join(f"{c.key} {_fmt(c.weight)}" for c in p.channels)
        raise PolicyError(
            f"channel weights add up to {_fmt(total)} ({weights}); they must add up to 100 "
            f"(or to 1)",
            field="scoring.channels",
        )
    # bands
    if not p.bands:
        raise PolicyError("at least one grade band is needed", field="scoring.bands")
    keys: set[str] = set()
    for i, b in enumerate(p.bands):
        where = f"scoring.bands[{i}]"
        if not b.key or b.key in keys:
            raise PolicyError(f"grade key {b.key!r} is empty or used twice", field=where)
        keys.add(b.key)
        if i and b.min_score >= p.bands[i - 1].min_score:
            raise PolicyError(
                f"bands go from the best grade down: {b.key!r} (from {_fmt(b.min_score)}) must "
                f"start below {p.bands[i - 1].key!r} (from {_fmt(p.bands[i - 1].min_score)})",
                field=f"{where}.min",
            )
    if p.bands[-1].min_score > 0:
        raise PolicyError(
            f"the lowest grade {p.bands[-1].key!r} starts at {_fmt(p.bands[-1].min_score)}; it "
            f"must start at 0 so that every score gets a grade",
            field=f"scoring.bands[{len(p.bands) - 1}].min",
        )
    for i, q in enumerate(p.quotas):
        where = f"scoring.quotas[{i}]"
        if q.grade not in keys:
            raise PolicyError(f"unknown grade {q.grade!r}; grades are {', '.join(p.band_keys)}",
                              field=f"{where}.grade")
        if q.grade == p.bands[-1].key:
            raise PolicyError("the lowest grade cannot have a quota: there is no grade below",
                              field=f"{where}.grade")
        if q.max_share is None and q.max_count is None:
            raise PolicyError("give max_share (like '3/10') or max_count", field=where)
        if q.max_share is not None and not 0 <= q.max_share <= 1:
            raise PolicyError("max_share must be between 0 and 1", field=f"{where}.max_share")
        if q.max_count is not None and (not isinstance(q.max_count, int) or q.max_count < 0):
            raise PolicyError("max_count must be a whole number, 0 or more",
                              field=f"{where}.max_count")
        if q.ties not in ("demote", "keep"):
            raise PolicyError("ties must be 'demote' or 'keep'", field=f"{where}.ties")
    if len({q.grade for q in p.quotas}) != len(p.quotas):
        raise PolicyError("one quota per grade", field="scoring.quotas")
    for i, v in enumerate(p.vetoes):
        where = f"scoring.vetoes[{i}]"
        if not v.condition:
            raise PolicyError("a veto needs a condition name", field=f"{where}.condition")
        if v.cap not in keys:
            raise PolicyError(f"unknown grade {v.cap!r}; grades are {', '.join(p.band_keys)}",
                              field=f"{where}.cap")
    for grade in p.follow_ups:
        if grade not in keys:
            raise PolicyError(f"unknown grade {grade!r}; grades are {', '.join(p.band_keys)}",
                              field=f"scoring.follow_ups.{grade}")
    _check_vote_rules(p.vote)
    if p.publication.publicity_days is not None and p.publication.publicity_days < 0:
        raise PolicyError("must be 0 or more", field="scoring.publication.publicity_days")


def _check_vote_rules(v: VoteRules) -> None:
    field = "scoring.vote"
    if v.blank not in ("abstain", "invalid"):
        raise PolicyError("blank must be 'abstain' or 'invalid'", field=f"{field}.blank")
    if not v.categories:
        raise PolicyError("at least one voter category is needed", field=f"{field}.categories")
    unknown = v.grassroots - set(v.categories)
    if unknown:
        raise PolicyError(
            f"unknown category {sorted(unknown)[0]!r}; categories are "
            f"{', '.join(v.categories)}",
            field=f"{field}.grassroots",
        )
    for name in ("quorum", "min_grassroots_share"):
        share = getattr(v, name)
        if share is not None and not 0 < share <= 1:
            raise PolicyError(f"{share} is not a share between 0 and 1; write e.g. '2/3'",
                              field=f"{field}.{name}")
    if v.min_grassroots_share is not None and not v.grassroots:
        raise PolicyError("min_grassroots_share needs grassroots categories",
                          field=f"{field}.grassroots")
    if not isinstance(v.min_group_size, int) or isinstance(v.min_group_size, bool) \
            or v.min_group_size < 1:
        raise PolicyError("must be a whole number, 1 or more", field=f"{field}.min_group_size")


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
