"""Channel scores and the weighted composite score over a policy's channels."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from reviewflow.exceptions import ScoringError
from reviewflow.scoring._numbers import _decimal, _fmt, _to_decimal
from reviewflow.scoring._policy import ScoringPolicy
from reviewflow.scoring._rules import Channel
from reviewflow.scoring._scale import ScoreResult, score

# --------------------------------------------------------------------------- channels


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
