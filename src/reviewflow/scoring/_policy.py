"""The scoring policy (``Policy.scoring``): its defaults, its checks, and its policy-file form."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

from reviewflow.exceptions import PolicyError, ScoringError
from reviewflow.scoring._numbers import Rounding, _fmt, _num, _rounding, _to_fraction
from reviewflow.scoring._rules import (
    _CHANNEL_KINDS,
    Channel,
    GradeBand,
    PublicationRules,
    Quota,
    Veto,
    VoteRules,
)
from reviewflow.scoring._scale import GradeScale

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
