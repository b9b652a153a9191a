"""Hostile event data: every event of the lifecycle, through the Python API and the CLI.

A property test drives one case to the stage each event of
:data:`reviewflow.policy.EVENTS` starts from, then fires the event with arbitrary
JSON-ish data: the real field names and hostile ones (``case_id``, ``event``,
``self``, ``actor``, ``retries``, invisible characters...), values of every JSON type,
integers past the 4,300-digit limit, deep nesting, lone surrogates, NaN and infinity,
and (through the API only) Python values that are not JSON at all. For each command:

* only a :class:`ReviewflowError` escapes the API, and the CLI exits 0, 1 (a rule
  refused) or 2 (bad input), never 3 (an internal error);
* a refused command changed nothing: the case's version, stage, data, last hash and
  history are those from before.

The findings of issue 18 (item 7) are pinned one by one below the property tests.

CI form: 40 API and 6 CLI examples per event. Long form (``REVIEWFLOW_LONG=1``): 1,000 and 60.
"""

from __future__ import annotations

import decimal
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reviewflow as rf
from reviewflow.cli import main
from reviewflow.policy import EVENTS
from reviewflow.policy_file import DEFAULT_POLICY_FILE, load_policy
from reviewflow.testing import SAMPLE_VOTE, Cast, drive_to, passing_report, seed_campaign, valid_data

from .conftest import LONG

CAST = Cast.default()
EVENT_NAMES = [name for name, *_ in EVENTS]
SOURCE = {name: source for name, source, *_ in EVENTS}
API_EXAMPLES = 1000 if LONG else 40
CLI_EXAMPLES = 60 if LONG else 6

#: The data keys the events really take, and keys that must never reach anything else.
FIELDS = sorted({key for name in EVENT_NAMES for key in valid_data(name)} | {"date", "rating"})
HOSTILE_KEYS = ["case_id", "event", "self", "actor", "idempotency_key", "retries", "data",
                "kwargs", "__class__", "late", "", " ", "problems\u200b", "\u202etext",
                "\x1b[31m", "\ud800", "problems ", "PROBLEMS"]
REPORT_KEYS = ["duty", "progress", "problems", "plans", "rectified"]
PROBLEM_KEYS = ["description", "causes", "measure", "follows"]

#: Text of any code point, lone surrogates included.
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=12)


class Huge(int):
    """An integer too long to write as text, shown by its length (for Hypothesis' reports)."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        return f"<an integer of {self.bit_length()} bits>"


HUGE_INTS = st.sampled_from([4300, 5000, 20]).map(lambda n: Huge(10**n)) | st.sampled_from(
    [2**63, -(2**63) - 1, 2**64])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True), ANY_TEXT,
    st.sampled_from(["", " ", "2016-01-20", "2016-01-11", "0001-01-01", "9999-12-31", "good",
                     "好", "组织生活不规范", "x" * 300_000]),
)
KEY_TEXT = st.one_of(st.sampled_from(FIELDS + HOSTILE_KEYS + REPORT_KEYS + PROBLEM_KEYS
                                     + list(SAMPLE_VOTE) + ["party_members"]), ANY_TEXT)


class Nested(list[Any]):
    """A list nested ``depth`` levels deep, shown by its depth (for Hypothesis' reports)."""

    def __init__(self, depth: int) -> None:
        value: list[Any] = []
        for _ in range(depth - 1):
            value = [value]
        super().__init__([value])
        self.depth = depth

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        return f"Nested({self.depth})"


JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEY_TEXT, inner, max_size=4)), max_leaves=10)
DEEP = st.integers(100, 3000).map(Nested)
PROBLEM = st.one_of(JSON, st.fixed_dictionaries(
    {"description": st.one_of(st.just("组织生活不规范"), JSON)},
    optional={k: st.one_of(st.just("措施"), JSON) for k in PROBLEM_KEYS[1:]}))
REPORT = st.one_of(
    JSON,
    st.fixed_dictionaries({}, optional={
        "duty": JSON, "progress": JSON, "plans": JSON, "problems": st.one_of(JSON, st.lists(PROBLEM)),
        "rectified": st.one_of(JSON, st.dictionaries(KEY_TEXT, JSON, max_size=3)),
    }),
    st.builds(lambda base, extra: {**base, **extra}, st.just(passing_report().to_json()),
              st.dictionaries(st.sampled_from(REPORT_KEYS), JSON, max_size=2)),
)
COUNTS = st.dictionaries(KEY_TEXT, st.one_of(st.integers(-5, 50), JSON), max_size=5)
#: Values shaped like each field, mixing the valid and the hostile.
SHAPED: dict[str, st.SearchStrategy[Any]] = {
    "problems": st.one_of(JSON, st.lists(st.one_of(st.just("组织生活不规范"), JSON), max_size=4)),
    "report": REPORT,
    "attendance": COUNTS,
    "vote": COUNTS,
}
VALUE = st.one_of(JSON, DEEP)
#: Python values a caller of the API might pass that are not JSON at all.
NOT_JSON = st.sampled_from([b"bytes", {1, 2}, object(), decimal.Decimal("1.5"), decimal.Decimal("NaN"),
                            pendulum.date(2016, 1, 20), pendulum.datetime(2016, 1, 20),
                            passing_report(), rf.Problem(description="p"), (1, 2), CAST.organizer,
                            complex(1, 2), float("nan"), range(3)])


@st.composite
def event_data(draw: st.DrawFn, event: str, *, python: bool) -> dict[str, Any]:
    """Data for ``event``: maybe its valid data, with keys added or replaced."""
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data = {k: (v.to_json() if isinstance(v, rf.Report) else v)
                for k, v in valid_data(event).items()}
    values = st.one_of(VALUE, NOT_JSON) if python else VALUE
    for key in draw(st.lists(st.one_of(st.sampled_from(FIELDS + HOSTILE_KEYS), ANY_TEXT),
                             min_size=0, max_size=3)):
        shaped = SHAPED.get(key)
        data[key] = draw(st.one_of(shaped, values) if shaped is not None else values)
    return data


def actor_for(campaign: rf.Campaign, event: str, case: rf.Case) -> rf.Actor:
    """Return someone who may fire ``event`` on the case now (so its data is checked)."""
    if event in ("submit_report", "submit_special_report"):
        return case.secretary
    if event == "sign_off":
        return CAST.signer(campaign, case)
    if event == "return_for_revision":
        return CAST.reviewers[0]
    if event in ("comment", "hold_talk"):
        return CAST.superior
    return CAST.organizer


def ready(campaign: rf.Campaign, clock: rf.FrozenClock, event: str) -> rf.Case:
    """Open case s1 and drive it to the stage ``event`` starts from (both comments made
    before ``finish_evaluation``, so that its vote is what is checked)."""
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    source = SOURCE[event]
    assert source is not None
    case = drive_to(campaign, "s1", source, cast=CAST, clock=clock)
    if event == "finish_evaluation":
        campaign.fire("s1", "comment", actor=CAST.superior, text="工作扎实")
        case = campaign.fire("s1", "comment", actor=CAST.delegate, text="成效明显")
    return case


def snapshot(campaign: rf.Campaign) -> tuple[Any, ...]:
    """What a refused command must leave as it was."""
    case = campaign.case("s1")
    return (case.version, case.stage, json.dumps(case.data, sort_keys=True), case.last_hash,
            tuple(r.hash for r in case.history))


FUZZ_API = settings(max_examples=API_EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_any_data_through_the_api_gives_a_reviewflow_error_and_changes_nothing(event: str) -> None:
    outcomes: dict[str, int] = {}

    @FUZZ_API
    @given(event_data(event, python=True), st.sampled_from([None, "k1"]))
    def fuzz(data: dict[str, Any], key: str | None) -> None:
        campaign, clock = seed_campaign()
        case = ready(campaign, clock, event)
        before = snapshot(campaign)
        # actor, idempotency_key and retries are fire's own arguments: hostile ones too
        arguments = {"actor": actor_for(campaign, event, case), "idempotency_key": key, **data}
        try:
            campaign.fire("s1", event, **arguments)
        except rf.ReviewflowError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            assert snapshot(campaign) == before, f"{event} {data!r:.200}: refused, yet changed"
        else:
            outcomes["ok"] = outcomes.get("ok", 0) + 1
            assert campaign.case("s1").version == before[0] + 1
            assert campaign.verify().ok

    fuzz()
    print(f"\n{event}: {outcomes}")


# ---------------------------------------------------------------------- the CLI


def _json_text(data: Any, ascii_only: bool) -> str:
    """Return ``data`` as JSON text, integers of any length included."""
    limit, depth = sys.get_int_max_str_digits(), sys.getrecursionlimit()
    sys.set_int_max_str_digits(0)
    sys.setrecursionlimit(20_000)
    try:
        return json.dumps(data, ensure_ascii=ascii_only)
    finally:
        sys.set_int_max_str_digits(limit)
        sys.setrecursionlimit(depth)


#: JSON text no encoder writes: constants, duplicate keys, huge numbers, deep nesting...
RAW = {
    "NaN": "NaN", "a list": "[]", "a number": "1", "a string": '"x"', "null": "null",
    "NaN inside": '{"problems": NaN}', "Infinity inside": '{"vote": {"good": Infinity}}',
    "duplicate key": '{"problems": ["p"], "problems": 1}',
    "5,001-digit count": '{"attendance": {"party_members": 1' + "0" * 5000 + "}}",
    "nested 5,000 deep": '{"problems": ' + "[" * 5000 + "]" * 5000 + "}",
    "unterminated": "{" + '"a":' * 100 + "1", "surrogate key": '{"\\ud800": 1}',
    "NUL text": '{"text": "\\u0000"}', "1e999": '{"comment": 1e999}', "BOM": "\ufeff{}",
    "negative zero": '{"rating": -0.0}',
}
RAW_DATA = st.sampled_from(sorted(RAW)).map(RAW.__getitem__)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One SQLite campaign per event, its case at the event's source stage, and the
    time to act at (``--now``); each example fires on a copy."""
    root = tmp_path_factory.mktemp("cli-data")
    shutil.copy(DEFAULT_POLICY_FILE, root / "policy.toml")
    actors = {"bureau": CAST.organizer, "li": CAST.reviewers[0], "wang": CAST.superior,
              "zhao": CAST.delegate}
    (root / "reviewflow.toml").write_text(
        'db = "sqlite:///template.db"\ncampaign = "2016"\npolicy = "policy.toml"\n'
        "rehearsal = true\n" + "".join(
            f'[actors.{a.id}]\nname = "{a.name}"\nroles = {json.dumps(sorted(a.roles))}\n'
            for a in actors.values()), encoding="utf-8")
    out: dict[str, Any] = {"root": root}
    policy = load_policy(root / "policy.toml")
    for event in EVENT_NAMES:
        url = f"sqlite:///{root / f'{event}.db'}"
        campaign, clock = seed_campaign(policy=policy, store=url)
        case = ready(campaign, clock, event)
        out[event] = (root / f"{event}.db", clock.now().isoformat(),
                      actor_for(campaign, event, case).id)
        campaign.store.close()
    return out


def _stored(db: Path) -> tuple[Any, ...]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return (conn.execute("select version, stage, state, last_hash from rf_cases").fetchall(),
                conn.execute("select count(*) from rf_events").fetchone())


def fire_cli(templates: dict[str, Any], event: str, text: str, where: Path,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, bool]:
    """Fire ``event`` through ``main`` on a copy of its template with ``--data text``;
    return the exit code, stderr, and whether the database changed."""
    template, now, actor = templates[event]
    db = where / "ex.db"
    shutil.copy(template, db)
    before = _stored(db)
    code = main(["--lang", "en", "--config", str(templates["root"] / "reviewflow.toml"),
                 "--db", f"sqlite:///{db}", "--now", now,
                 "fire", "s1", event, "--actor", actor, "--data", text])
    _out, err = capsys.readouterr()
    return code, err, _stored(db) != before


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_any_data_through_the_cli_exits_0_1_or_2_and_changes_nothing_when_refused(
        event: str, templates: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:

    @settings(max_examples=CLI_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.builds(_json_text, event_data(event, python=False), st.booleans()),
                     RAW_DATA))
    def fuzz(text: str) -> None:
        code, err, changed = fire_cli(templates, event, text, tmp_path, capsys)
        assert code in (0, 1, 2), f"{event} --data {text[:200]!r}: exit {code}: {err[-500:]}"
        assert "internal error" not in err
        if code != 0:
            assert not changed, f"{event} --data {text[:200]!r}: exit {code}, yet written"

    fuzz()


# ---------------------------------------------------------------------- the findings, one by one

#: (event, data) pairs that crashed with exit 3 (issue 18, item 7).
FINDINGS = [
    ("finish_research", {"problems": ["p"], "case_id": "s2"}),
    ("finish_research", {"problems": ["p"], "event": "submit_report"}),
    ("sign_off", {"self": 1}),
    ("comment", {"text": "x", "case_id": "s1"}),
    ("finish_research", {"problems": True}),
    ("finish_research", {"problems": -1}),
    ("finish_research", {"problems": 1.5}),
    ("submit_report", {"report": {**passing_report().to_json(),
                                  "problems": [{"description": 5, "causes": "c", "measure": "m"}]}}),
    ("submit_report", {"report": {**passing_report().to_json(),
                                  "problems": [{"description": "d", "causes": ["c"], "measure": "m"}]}}),
    ("submit_report", {"report": {**passing_report().to_json(), "rectified": {"去年的问题": 1}}}),
    ("submit_report", {"report": {**passing_report().to_json(), "duty": 5}}),
    ("hold_meeting", {"attendance": {"party_members": Huge(10**5000)}}),
    ("finish_research", {"problems": [str(10**20)], "retries": "3"}),
]


@pytest.mark.parametrize(("event", "data"), FINDINGS, ids=[f"{e}-{sorted(d)}" for e, d in FINDINGS])
def test_each_finding_is_a_reviewflow_error_through_the_api(event: str, data: dict[str, Any]) -> None:
    campaign, clock = seed_campaign()
    case = ready(campaign, clock, event)
    before = snapshot(campaign)
    with pytest.raises(rf.ReviewflowError):
        campaign.fire("s1", event, actor=actor_for(campaign, event, case), **data)
    assert snapshot(campaign) == before


@pytest.mark.parametrize(("event", "data"), FINDINGS, ids=[f"{e}-{sorted(d)}" for e, d in FINDINGS])
def test_each_finding_exits_2_from_the_cli_with_nothing_written(
        event: str, data: dict[str, Any], templates: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, err, changed = fire_cli(templates, event, _json_text(data, False), tmp_path, capsys)
    assert code == 2, err
    assert not changed


@pytest.mark.parametrize("key", ["case_id", "event", "self"])
def test_a_data_key_named_like_an_argument_of_fire_is_refused_with_a_reason(key: str) -> None:
    campaign, clock = seed_campaign()
    ready(campaign, clock, "finish_research")
    with pytest.raises(rf.TransitionRefused) as caught:
        campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"], **{key: "x"})
    assert caught.value.reason == "invalid_data"
    assert key in str(caught.value)
    [result] = campaign.fire_many(["s1"], "finish_research", actor=CAST.organizer,
                                  problems=["p"], **{key: "x"})
    assert isinstance(result.error, rf.TransitionRefused)
    assert result.error.reason == "invalid_data"
    assert campaign.case("s1").version == 1


@pytest.mark.parametrize(("argument", "value"), [
    ("idempotency_key", ["k"]), ("idempotency_key", 5), ("retries", "3"), ("retries", -1),
    ("retries", True), ("actor", "bureau"), ("actor", None),
])
def test_the_arguments_of_fire_are_checked(argument: str, value: Any) -> None:
    campaign, clock = seed_campaign()
    ready(campaign, clock, "finish_research")
    kwargs: dict[str, Any] = {"actor": CAST.organizer, argument: value}
    with pytest.raises(rf.InputError) as caught:
        campaign.fire("s1", "finish_research", problems=["p"], **kwargs)
    assert argument in str(caught.value)
    assert campaign.case("s1").version == 1


@pytest.mark.parametrize(("argument", "value"), [
    ("guidance_group", [1]), ("guidance_group", {"a": 1}), ("guidance_group", "g\u200b"),
    ("carried_over", 1), ("carried_over", "去年的问题"), ("carried_over", [None]),
    ("previous_case_id", ["x"]), ("actor", "bureau"), ("actor", 5),
])
def test_the_other_arguments_of_open_cases_are_checked(argument: str, value: Any) -> None:
    campaign, _clock = seed_campaign()
    row: dict[str, Any] = {"case_id": "s1", "organization": "一中", "secretary": CAST.secretary("s1")}
    kwargs: dict[str, Any] = {}
    if argument == "actor":
        kwargs["actor"] = value
    else:
        row[argument] = value
    with pytest.raises(rf.InputError):
        campaign.open_cases([row], **kwargs)
    assert campaign.cases() == []
