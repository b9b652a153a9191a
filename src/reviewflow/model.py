"""The things a campaign is made of: stages, actors, reports, cases and event records."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

import attrs

from reviewflow import _names
from reviewflow.exceptions import InputError

__all__ = [
    "GENESIS_HASH",
    "Actor",
    "Case",
    "EventRecord",
    "Problem",
    "Report",
    "Stage",
]


class Stage(enum.StrEnum):
    """The stages of one case, in the seed's order; ``.label`` is the Chinese name.

    >>> Stage.APPROVAL.label
    '材料审阅'
    >>> Stage("approval") is Stage.APPROVAL
    True
    """

    RESEARCH = "research"
    DRAFTING = "drafting"
    APPROVAL = "approval"
    MEETING = "meeting"
    EVALUATION = "evaluation"
    GROUP_TALK = "group_talk"
    REPORT_BACK = "report_back"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        """The Chinese name of the stage."""
        return _STAGE_LABELS[self]

    @property
    def order(self) -> int:
        """The position of the stage in the lifecycle, from 0."""
        return _STAGE_ORDER[self]


_STAGE_LABELS = {
    Stage.RESEARCH: "提前准备",
    Stage.DRAFTING: "撰写述职报告",
    Stage.APPROVAL: "材料审阅",
    Stage.MEETING: "述职评议会",
    Stage.EVALUATION: "三评",
    Stage.GROUP_TALK: "集体约谈",
    Stage.REPORT_BACK: "专题报告",
    Stage.CLOSED: "已办结",
}
_STAGE_ORDER = {stage: i for i, stage in enumerate(Stage)}


def _roles(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _actor_id(value: Any) -> Any:
    return _names.lookup(value, "actor id")


def _actor_name(value: Any) -> Any:
    return _names.name(value, "actor name") if isinstance(value, str) else value


@attrs.frozen
class Actor:
    """Someone who fires events: an id (the host's), a display name and a set of roles.

    The id and the name are normalised to NFC; an id with a control or format character
    or with white space at either end, or a name with a control or format character, is
    an :class:`InputError` (``bad_identifier``).

    >>> Actor("zhang", "张三", roles={"secretary"}).roles
    frozenset({'secretary'})
    """

    id: str = attrs.field(converter=_actor_id, validator=attrs.validators.instance_of(str))
    name: str = attrs.field(default="", converter=_actor_name)
    roles: frozenset[str] = attrs.field(factory=frozenset, converter=_roles)

    def to_json(self) -> dict[str, Any]:
        """Return the actor as plain JSON data."""
        return {"id": self.id, "name": self.name, "roles": sorted(self.roles)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        """Build an actor from :meth:`to_json` data."""
        return cls(str(data["id"]), str(data.get("name", "")), roles=data.get("roles", ()))


def _must_be_text(instance: object, attribute: Any, value: Any) -> None:
    """An attrs validator: ``value`` is text (an InputError naming the field otherwise)."""
    if not isinstance(value, str) and not (value is None and attribute.name == "follows"):
        raise InputError(f"{type(instance).__name__.lower()} {attribute.name} must be text, "
                         f"got {type(value).__name__} {value!r:.60}")


@attrs.frozen(kw_only=True)
class Problem:
    """One problem in a report: what it is, its causes (主客观原因) and the measure against it.

    Every field is text (``follows`` may be None); anything else is an :class:`InputError`.
    """

    description: str = attrs.field(validator=_must_be_text)
    causes: str = attrs.field(default="", validator=_must_be_text)
    measure: str = attrs.field(default="", validator=_must_be_text)
    #: The text of last year's problem this one follows up, when it carries one over.
    follows: str | None = attrs.field(default=None, validator=_must_be_text)

    def to_json(self) -> dict[str, Any]:
        """Return the problem as plain JSON data."""
        out: dict[str, Any] = {
            "description": self.description, "causes": self.causes, "measure": self.measure,
        }
        if self.follows is not None:
            out["follows"] = self.follows
        return out


_PROBLEM_FIELDS = frozenset({"description", "causes", "measure", "follows"})


def _problems(value: Iterable[Problem | Mapping[str, Any]]) -> tuple[Problem, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InputError(f"report problems must be a list of problems, got {type(value).__name__}; "
                         'write problems=[{"description": "...", "causes": "...", "measure": "..."}]')
    out = []
    for i, p in enumerate(value):
        if isinstance(p, Problem):
            out.append(p)
            continue
        if not isinstance(p, Mapping) or "description" not in p:
            raise InputError(f"report problems[{i}] must be a table with description, causes and "
                             f"measure, got {type(p).__name__} {p!r:.60}")
        unknown = [k for k in p if k not in _PROBLEM_FIELDS]
        if unknown:
            raise InputError(f"report problems[{i}]: unknown field(s) "
                             f"{', '.join(sorted(map(repr, unknown)))}; a problem has "
                             f"{', '.join(sorted(_PROBLEM_FIELDS))}")
        try:
            out.append(Problem(**p))
        except InputError as exc:
            raise InputError(f"report problems[{i}]: {exc}") from None
    return tuple(out)


def _rectified(value: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InputError(f"report rectified must be a table {{last year's problem: how it was "
                         f"addressed}}, got {type(value).__name__}")
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise InputError(f"report rectified: {key!r:.60}: {text!r:.60}: each of last year's "
                             "problems and how it was addressed (整改落实情况) must be text")
    return dict(value)


@attrs.frozen(kw_only=True)
class Report:
    """A secretary's report (述职报告), in the four parts of 四个讲清楚.

    ``duty`` (个人履职) and ``progress`` (本年度工作推进) are the achievement parts;
    ``problems`` the main problems with causes and measures; ``plans`` next year's plan.
    ``rectified`` maps each of last year's problems to how it was addressed (整改落实情况).
    """

    duty: str = attrs.field(default="", validator=_must_be_text)
    progress: str = attrs.field(default="", validator=_must_be_text)
    problems: tuple[Problem, ...] = attrs.field(default=(), converter=_problems)
    plans: str = attrs.field(default="", validator=_must_be_text)
    rectified: Mapping[str, str] = attrs.field(factory=dict, converter=_rectified)

    def section_text(self, name: str) -> str:
        """Return the text of one section (problems joined), for length rules."""
        if name == "problems":
            return "".join(p.description + p.causes + p.measure for p in self.problems)
        if name == "rectified":
            return "".join(self.rectified.values())
        value = getattr(self, name, None)
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON data."""
        return {
            "duty": self.duty,
            "progress": self.progress,
            "problems": [p.to_json() for p in self.problems],
            "plans": self.plans,
            "rectified": dict(self.rectified),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """Build a report from :meth:`to_json` data: text fields (null for empty), a list
        of problems, a table of rectifications; anything else is an :class:`InputError`."""
        if not isinstance(data, Mapping):
            raise InputError(f"a report must be a table, got {type(data).__name__}")
        unknown = [k for k in data if k not in _REPORT_FIELDS]
        if unknown:
            raise InputError(f"report: unknown field(s) {', '.join(sorted(map(repr, unknown)))}; "
                             f"a report has {', '.join(_REPORT_FIELDS)}")

        def get(key: str, empty: Any) -> Any:
            value = data.get(key)
            return empty if value is None else value

        return cls(duty=get("duty", ""), progress=get("progress", ""),
                   problems=get("problems", ()), plans=get("plans", ""),
                   rectified=get("rectified", {}))


_REPORT_FIELDS = ("duty", "progress", "problems", "plans", "rectified")


#: The ``prev_hash`` of a case's first event.
GENESIS_HASH = "0" * 64


# One encoder, built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                            allow_nan=False)


def _c_encoder() -> Any:
    """The C encoder behind ``_ENCODER.encode``, built once (``encode`` builds one per call,
    about half the cost of encoding a record's data), or None where it is not available.

    Same C code and options, so the same text: a record's hash does not change. It skips
    the circular-reference check (a circular structure raises RecursionError instead of
    ValueError; record data is plain JSON data). Checked against ``_ENCODER`` here.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover  # CPython has it
        return None
    try:
        enc = make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",",
                   True, False, False)
        sample = {"b": [1, 2.5, None, True, {"z": "é\n\"", "a": -0.0}], "a": "述职", "c": {}}
        if "".join(enc(sample, 0)) != _ENCODER.encode(sample):  # pragma: no cover
            return None
    except Exception:  # pragma: no cover  # another interpreter's signature
        return None
    return enc


_C_ENCODE = _c_encoder()


def _canonical(data: Mapping[str, Any]) -> str:
    if not data:
        return "{}"
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(data, 0))
    return _ENCODER.encode(data)  # pragma: no cover


class EventRecord(NamedTuple):
    """One step of one case, immutable; chained to the case's previous step by ``prev_hash``.

    ``seq`` is the case's version after this step (1 for the opening event).
    ``at`` is an ISO 8601 string with its offset, exactly as stored and hashed.
    ``data`` is plain JSON data; ``reason`` is set for steps that carry one
    (a send-back, a late submission, an extension).

    A named tuple: cheap to build on the hot path and immutable by construction.
    """

    campaign_id: str
    case_id: str
    seq: int
    event: str
    actor_id: str
    role: str
    at: str
    from_stage: str | None
    to_stage: str
    reason: str | None = None
    data: Mapping[str, Any] = {}  # never mutated: records are immutable
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    @property
    def event_id(self) -> str:
        """A stable, unique id for de-duplicating deliveries: campaign/case/seq."""
        return f"{self.campaign_id}/{self.case_id}/{self.seq}"

    def compute_hash(self) -> str:
        """Recompute this record's hash from its content and ``prev_hash``."""
        return _digest(
            self.prev_hash, self.campaign_id, self.case_id, self.seq, self.event, self.actor_id,
            self.role, self.at, self.from_stage, self.to_stage, self.reason, self.data,
        )

    def sealed(self) -> EventRecord:
        """Return a copy with ``hash`` computed."""
        return self._replace(hash=self.compute_hash())

    @classmethod
    def make(
        cls, campaign_id: str, case_id: str, seq: int, event: str, actor_id: str, role: str,
        at: str, from_stage: str | None, to_stage: str, reason: str | None,
        data: Mapping[str, Any], prev_hash: str,
    ) -> EventRecord:
        """Build a sealed record in one go (the engine's hot path: :func:`_digest` inlined,
        and the tuple built without the named tuple's Python-level ``__new__``)."""
        global _SEALED
        canonical = _canonical(data) if data else "{}"
        _SEALED = (data, canonical)
        text = "\x1f".join((
            prev_hash, campaign_id, case_id, str(seq), event, actor_id, role, at,
            from_stage or "", to_stage, reason or "", canonical,
        ))
        return _new_tuple(cls, (
            campaign_id, case_id, seq, event, actor_id, role, at, from_stage, to_stage, reason,
            data, prev_hash, _sha256(text.encode()).hexdigest(),
        ))

    def to_json(self) -> dict[str, Any]:
        """Return the record as plain JSON data."""
        out = self._asdict()
        out["data"] = dict(self.data)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventRecord:
        """Build a record from :meth:`to_json` data."""
        return cls(**dict(data))


_new_tuple = tuple.__new__
_sha256 = hashlib.sha256
#: The data and canonical JSON text of the record sealed last (see :func:`canonical_data`).
_SEALED: tuple[Any, str] = (None, "{}")


def canonical_data(data: Mapping[str, Any]) -> str:
    """Return the canonical JSON text of a record's data, the text its hash covers.

    The text of the record sealed last is remembered, so that a store keeping records
    as text does not encode the same data twice on a step.
    """
    sealed = _SEALED
    if sealed[0] is data:
        return sealed[1]
    return _canonical(data) if data else "{}"


def _digest(
    prev_hash: str, campaign_id: str, case_id: str, seq: int, event: str, actor_id: str,
    role: str, at: str, from_stage: str | None, to_stage: str, reason: str | None,
    data: Mapping[str, Any],
) -> str:
    text = "\x1f".join((
        prev_hash, campaign_id, case_id, str(seq), event, actor_id, role, at,
        from_stage or "", to_stage, reason or "", _canonical(data),
    ))
    return hashlib.sha256(text.encode()).hexdigest()


class HistorySource(Protocol):
    """What a case asks for its history (a store)."""

    def history(self, campaign_id: str, case_id: str) -> list[EventRecord]: ...


@attrs.define(slots=True, eq=False, repr=False)
class Case:
    """One organisation and its secretary in one campaign (述职对象).

    A case is a snapshot: the store hands out copies, and a step produces a new
    version. ``stage`` and ``version`` say where it stands; ``data`` holds what the
    steps recorded (problem list, report, signatures, meeting, evaluation), as
    plain JSON data that is replaced, never edited in place.
    """

    campaign_id: str
    case_id: str
    organization: str
    secretary: Actor
    stage: Stage = Stage.RESEARCH
    version: int = 0
    last_hash: str = GENESIS_HASH
    data: dict[str, Any] = attrs.field(factory=dict)
    previous_case_id: str | None = None
    _source: HistorySource | None = attrs.field(default=None, alias="source")

    @property
    def history(self) -> tuple[EventRecord, ...]:
        """Return this case's steps in order, up to this snapshot's version."""
        if self._source is None:
            return ()
        records = self._source.history(self.campaign_id, self.case_id)
        return tuple(records[: self.version])

    def copy(self) -> Case:
        """Return a detached copy that a step may change (``data`` is copied one level)."""
        return Case(
            self.campaign_id, self.case_id, self.organization, self.secretary, self.stage,
            self.version, self.last_hash, dict(self.data), self.previous_case_id, self._source,
        )

    def bind(self, source: HistorySource | None) -> Case:
        """Attach the store that answers :attr:`history`; return self."""
        self._source = source
        return self

    def to_json(self) -> dict[str, Any]:
        """Return the case as plain JSON data (what a store keeps)."""
        return {
            "campaign_id": self.campaign_id,
            "case_id": self.case_id,
            "organization": self.organization,
            "secretary": self.secretary.to_json(),
            "stage": self.stage.value,
            "version": self.version,
            "last_hash": self.last_hash,
            "data": self.data,
            "previous_case_id": self.previous_case_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: HistorySource | None = None) -> Case:
        """Build a case from :meth:`to_json` data."""
        return cls(
            str(data["campaign_id"]),
            str(data["case_id"]),
            str(data["organization"]),
            Actor.from_json(data["secretary"]),
            Stage(data["stage"]),
            int(data["version"]),
            str(data["last_hash"]),
            dict(data.get("data") or {}),
            data.get("previous_case_id"),
            source,
        )

    def __repr__(self) -> str:
        return (
            f"Case({self.case_id!r}, organization={self.organization!r}, "
            f"stage={self.stage.value!r}, version={self.version})"
        )

