"""Policy files: the shipped seed plan, round trips, every error naming file, field and line."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from fractions import Fraction
from pathlib import Path

import attrs
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewflow import deadlines
from reviewflow.deadlines import At
from reviewflow.exceptions import PolicyError, ReviewflowError
from reviewflow.model import Stage
from reviewflow.policy import EVENT_NAMES, ApprovalLevel, ContentRules, Policy, StageRule
from reviewflow.policy_file import (
    DEFAULT_POLICY_FILE,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    _LineIndex,
    load_policy,
    policy_from_dict,
    policy_to_data,
    policy_to_toml,
)

DOC = Path(__file__).parent.parent / "docs" / "reference" / "policy-file.md"


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def differences(a: Policy, b: Policy) -> list[str]:
    return [f.name for f in attrs.fields(Policy) if getattr(a, f.name) != getattr(b, f.name)]


# --------------------------------------------------------------------------- the seed's plan


def test_shipped_default_file_loads_to_the_seed_plan_for_2016() -> None:
    loaded = load_policy(DEFAULT_POLICY_FILE)
    expected = Policy.default(year=2016)
    assert differences(expected, loaded) == [], (
        "src/reviewflow/default_policy.toml no longer matches Policy.default(year=2016); "
        "update the file (and the example in docs/reference/policy-file.md). "
        "policy_to_toml(Policy.default(year=2016)) shows the expected settings."
    )
    assert expected == loaded


def test_docs_show_the_shipped_file_verbatim() -> None:
    doc = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    shipped = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    assert shipped in blocks


def test_docs_describe_every_setting() -> None:
    doc = DOC.read_text(encoding="utf-8")
    keys = [
        "name", "year", "tz", "plugins", "roles", "stages", "due", "hard", "grace", "opens",
        "ladder", "permissions", "approval.levels", "guidance_groups", "assignments", "content",
        "scoring", "calendar", *(f.name for f in attrs.fields(ContentRules)),
    ]
    missing = [key for key in keys if f"`{key}`" not in doc and f"[{key}]" not in doc]
    assert missing == []


def test_a_file_with_only_the_year_is_the_seed_plan_for_that_year(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "year = 2020\n")) == Policy.default(year=2020)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + 'year = 2016\nname = "述职"\n'.encode())
    assert load_policy(path).name == "述职"


def test_load_policy_accepts_str_paths(tmp_path: Path) -> None:
    assert load_policy(str(write(tmp_path, "year = 2016\n"))).year == 2016


# --------------------------------------------------------------------------- round trips


def test_default_policy_round_trips_through_toml(tmp_path: Path) -> None:
    policy = Policy.default(year=2016)
    text = policy_to_toml(policy)
    loaded = load_policy(write(tmp_path, text))
    assert differences(policy, loaded) == []
    assert policy == loaded
    assert policy_to_toml(loaded) == text


def rich_policy() -> Policy:
    tz = "Asia/Shanghai"
    roles = {"organizer": "局党组", "secretary": "书记", "guidance_group": "指导组",
             "auditor": "审计 \"特别\" \\ 角色"}
    return Policy(
        name="测试\t考核 \"2021\"",
        year=2021,
        tz=tz,
        roles=roles,
        stages={
            Stage.RESEARCH: StageRule(opens=pendulum.datetime(2021, 1, 2, 8, 30, tz=tz)),
            Stage.DRAFTING: StageRule(
                due=At(pendulum.datetime(2021, 1, 18, 17, 30, 15, 250000, tz=tz)), hard=True,
                grace=pendulum.duration(days=1, hours=2, minutes=3, seconds=4),
            ),
            Stage.MEETING: StageRule(due=At(pendulum.datetime(2021, 2, 1, tz=tz))),
            Stage.CLOSED: StageRule(hard=True),
        },
        permissions={event: frozenset({"organizer"}) for event in sorted(EVENT_NAMES)}
        | {"comment": frozenset({"auditor"}), "submit_report": frozenset({"secretary", "auditor"}),
           "sign_off": frozenset({"guidance_group", "organizer"})},
        approval_levels=(
            ApprovalLevel(name="一级", label="", roles={"guidance_group"}),
            ApprovalLevel(name="two words", label="二级", roles={"organizer", "auditor"}),
        ),
        guidance_groups={"第一组": frozenset({"li", "wang"}), "empty": frozenset()},
        assignments={"school-01": "第一组", "school.02": "empty", "三中": "第一组"},
        content=ContentRules(
            required_sections=("duty", "problems"),
            achievement_sections=("duty",),
            achievement_max_share=None,
            problems_min_share=Fraction(1, 4),
            min_chars=100,
            max_chars=9000,
            require_cause_and_measure=False,
            require_carry_over=False,
        ),
        calendar={"days_off": (dt.date(2021, 2, 11), dt.date(2021, 2, 12)),
                  "working_days": (dt.date(2021, 2, 7),)},
        plugins=("webhook", "audit-log"),
    )


def test_a_policy_with_every_kind_of_setting_round_trips(tmp_path: Path) -> None:
    policy = rich_policy()
    loaded = load_policy(write(tmp_path, policy_to_toml(policy)))
    assert differences(policy, loaded) == []
    assert policy == loaded


def test_policies_round_trip_through_json() -> None:
    for policy in (Policy.default(year=2016), rich_policy()):
        data = json.loads(json.dumps(policy_to_data(policy)))
        assert policy_from_dict(data, source="the database") == policy


def test_policy_to_json_data_reads_back_as_the_same_policy() -> None:
    policy = attrs.evolve(
        Policy.default(year=2016),
        stages={Stage.MEETING: StageRule(opens=pendulum.datetime(2016, 1, 11, tz="Asia/Shanghai"),
                                         grace=pendulum.duration(hours=2), hard=True)},
        content=ContentRules(achievement_max_share=None),
    )
    assert policy_from_dict(json.loads(policy.to_json())) == policy


def test_iso_strings_are_accepted_for_opening_times(tmp_path: Path) -> None:
    text = 'year = 2016\n[stages.meeting]\nopens = "2016-01-11T08:00:00+08:00"\n'
    rule = load_policy(write(tmp_path, text)).stage(Stage.MEETING)
    assert pendulum.datetime(2016, 1, 11, 8, tz="Asia/Shanghai") == rule.opens


def test_a_policy_without_stages_round_trips(tmp_path: Path) -> None:
    policy = attrs.evolve(Policy.default(year=2016), stages={})
    loaded = load_policy(write(tmp_path, policy_to_toml(policy)))
    assert loaded.stages == {}
    assert loaded == policy


def test_every_form_of_due_rule_round_trips(tmp_path: Path) -> None:
    if not hasattr(deadlines, "OnDay"):
        pytest.skip("this reviewflow has fixed due times only")
    text = (
        "year = 2016\n\n[stages.drafting]\ndue = { on = 2016-01-17 }\n\n"
        '[stages.approval]\ndue = { after = "entered:approval", working_days = 5 }\n\n'
        '[stages.meeting]\ndue = { earliest = [{ after = "meeting", working_days = 5 }, '
        "{ at = 2016-03-01T00:00:00+08:00 }] }\n\n"
        '[stages.evaluation]\ndue = { after = { at = 2016-03-01T00:00:00+08:00 }, days = 3, '
        'time = "keep" }\n'
    )
    policy = load_policy(write(tmp_path, text))
    assert len(policy.stages) == 4
    again = load_policy(write(tmp_path, policy_to_toml(policy), "again.toml"))
    assert policy == again


def test_due_times_keep_their_instant_and_take_the_policy_zone(tmp_path: Path) -> None:
    text = (
        'year = 2016\ntz = "Asia/Shanghai"\n\n[stages.drafting]\n'
        "due = { at = 2016-01-17T16:00:00Z }\n\n[stages.meeting]\n"
        "opens = 2016-01-11\ndue = { at = 2016-02-01T09:00:00 }\n"
    )
    policy = load_policy(write(tmp_path, text))
    drafting = policy.stage(Stage.DRAFTING).due
    meeting = policy.stage(Stage.MEETING)
    assert isinstance(drafting, At)
    assert pendulum.datetime(2016, 1, 18, tz="Asia/Shanghai") == drafting.at
    assert drafting.at.timezone_name == "Asia/Shanghai"
    assert pendulum.datetime(2016, 1, 11, tz="Asia/Shanghai") == meeting.opens
    assert isinstance(meeting.due, At)
    assert pendulum.datetime(2016, 2, 1, 9, tz="Asia/Shanghai") == meeting.due.at


def test_grace_accepts_combined_units(tmp_path: Path) -> None:
    text = 'year = 2016\n[stages.drafting]\ngrace = "1d 2h30m"\n'
    rule = load_policy(write(tmp_path, text)).stage(Stage.DRAFTING)
    assert pendulum.duration(days=1, hours=2, minutes=30) == rule.grace


def test_shares_accept_fractions_and_percentages_and_false(tmp_path: Path) -> None:
    text = ('year = 2016\n[content]\nachievement_max_share = "30%"\n'
            'problems_min_share = "1/4"\n')
    content = load_policy(write(tmp_path, text)).content
    assert Fraction(3, 10) == content.achievement_max_share
    assert Fraction(1, 4) == content.problems_min_share
    off = load_policy(write(tmp_path, 'year = 2016\n[content]\nachievement_max_share = false\n'))
    assert off.content.achievement_max_share is None


def test_permissions_not_listed_keep_their_defaults(tmp_path: Path) -> None:
    text = 'year = 2016\n[permissions]\nhold_talk = ["organizer"]\n'
    policy = load_policy(write(tmp_path, text))
    seed = Policy.default(year=2016)
    assert frozenset({"organizer"}) == policy.permissions["hold_talk"]
    assert seed.permissions["sign_off"] == policy.permissions["sign_off"]


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    label=names,
    name=names.filter(str.strip),
    case_ids=st.lists(names, max_size=4, unique=True),
    members=st.frozensets(names, max_size=3),
)
def test_any_text_round_trips(label: str, name: str, case_ids: list[str],
                              members: frozenset[str]) -> None:
    seed = Policy.default(year=2016)
    policy = attrs.evolve(
        seed, name=name, roles={**seed.roles, "organizer": label},
        guidance_groups={label: members}, assignments=dict.fromkeys(case_ids, label),
    )
    text = policy_to_toml(policy)
    assert policy_from_dict(tomllib.loads(text)) == policy


# --------------------------------------------------------------------------- errors in settings

ERRORS = [
    # (file text, field, line, words in the message)
    ("yaer = 2016\n", "yaer", 1, "did you mean 'year'"),
    ('name = "x"\n', "year", None, "year = 2016"),
    ('year = "2016"\n', "year", 1, "whole number"),
    ("year = true\n", "year", 1, "whole number"),
    ("year = 1800\n", "year", 1, "plausible year"),
    ('year = 2016\ntz = "Asia/Shanghia"\n', "tz", 2, "IANA"),
    ('year = 2016\nname = " "\n', "name", 2, "name is empty"),
    ("year = 2016\n\n[stages.drafing]\nhard = true\n", "stages.drafing", 3,
     "did you mean 'drafting'"),
    ("year = 2016\n\n[stages.drafting]\ndue_at = 2016-01-18T00:00:00+08:00\n",
     "stages.drafting.due_at", 4, "did you mean 'due'"),
    ('year = 2016\n\n[stages.drafting]\nhard = "yes"\n', "stages.drafting.hard", 4,
     "true or false"),
    ('year = 2016\n\n[stages.drafting]\ndue = { at = "2016-13-45" }\n',
     "stages.drafting.due.at", 4, "date-time"),
    ('year = 2016\n\n[stages.drafting]\ndue = { at = 2016-01-18 }\n',
     "stages.drafting.due.at", 4, "offset"),
    ('year = 2016\n\n[stages.drafting]\ndue = 2016-01-18T00:00:00+08:00\n',
     "stages.drafting.due", 4, "due rule"),
    ('year = 2016\n\n[stages.meeting]\nopens = "mid-January"\n', "stages.meeting.opens", 4,
     "not a date-time"),
    ('year = 2016\n\n[stages.meeting]\ngrace = "1h"\ngrace_seconds = 60\n',
     "stages.meeting.grace_seconds", 5, "not both"),
    ('year = 2016\n\n[stages.meeting]\ngrace_seconds = "60"\n',
     "stages.meeting.grace_seconds", 4, "number of seconds"),
    ("year = 2016\n\n[stages.meeting]\nopens = 11\n", "stages.meeting.opens", 4, "date-time"),
    ('year = 2016\n\n[stages.drafting]\ngrace = "2 hours"\n', "stages.drafting.grace", 4,
     "not a duration"),
    ("year = 2016\n\n[stages.drafting]\ngrace = 2\n", "stages.drafting.grace", 4, '"2h"'),
    ("year = 2016\n\n[stages.drafting]\nladder = 3\n", "stages.drafting.ladder", 4, "rungs"),
    ("year = 2016\nstages = 3\n", "stages", 2, "must be a table"),
    # a deadline before the previous stage's
    ("year = 2016\n\n[stages.drafting]\ndue = { at = 2016-01-18T00:00:00+08:00 }\n\n"
     "[stages.approval]\nhard = true\ndue = { at = 2016-01-10T00:00:00+08:00 }\n",
     "stages.approval.due", 8, "before the due time of the earlier stage drafting"),
    ("year = 2016\n\n[stages.meeting]\nopens = 2016-02-11T00:00:00+08:00\n"
     "due = { at = 2016-02-01T00:00:00+08:00 }\n",
     "stages.meeting.due", 5, "before the window opens"),
    ('year = 2016\n\n[roles]\norganizer = 1\n', "roles.organizer", 4, "string"),
    ("year = 2016\n\n[roles]\n", "roles", 3, "no roles"),
    ('year = 2016\n\n[permissions]\nsign_of = ["organizer"]\n', "permissions.sign_of", 4,
     "did you mean 'sign_off'"),
    ('year = 2016\n\n[permissions]\nsign_off = ["organizer", "guidance_gruop"]\n',
     "permissions.sign_off[1]", 4, "did you mean 'guidance_group'"),
    ('year = 2016\n\n[permissions]\nsign_off = "organizer"\n', "permissions.sign_off", 4,
     "list of strings"),
    ('year = 2016\n\n[roles]\norganizer = "局党组"\nsecretary = "书记"\n\n[permissions]\n'
     'sign_off = ["organizer"]\n', "permissions", 7, "declare the role"),
    # approval levels
    ('year = 2016\n\n[[approval.levels]]\nname = "a"\nroles = ["organizer"]\n\n'
     '[[approval.levels]]\nname = "b"\nroles = []\n', "approval.levels[1].roles", 9,
     "no signers"),
    ('year = 2016\n\n[[approval.levels]]\nname = "a"\nroles = ["organizer"]\n\n'
     '[[approval.levels]]\nname = "b"\n', "approval.levels[1]", 7, "no signers"),
    ('year = 2016\n\n[[approval.levels]]\nroles = ["organizer"]\n', "approval.levels[0]", 3,
     "no name"),
    ('year = 2016\n\n[[approval.levels]]\nname = "a"\nroles = ["organiser"]\n',
     "approval.levels[0].roles[0]", 5, "did you mean 'organizer'"),
    ('year = 2016\n\n[[approval.levels]]\nname = "a"\nrole = ["organizer"]\n',
     "approval.levels[0].role", 5, "did you mean 'roles'"),
    ("year = 2016\n\n[approval]\nlevels = []\n", "approval.levels", 4,
     "at least one approval level"),
    ('year = 2016\n\n[[approval.levels]]\nname = "a"\nroles = ["organizer"]\n\n'
     '[[approval.levels]]\nname = "a"\nroles = ["organizer"]\n', "approval.levels", 3,
     "unique"),
    # groups and assignments
    ('year = 2016\n\n[guidance_groups]\none = ["li"]\n\n[assignments]\nschool-01 = "onee"\n',
     "assignments.school-01", 7, "did you mean 'one'"),
    ('year = 2016\n\n[guidance_groups]\none = "li"\n', "guidance_groups.one", 4,
     "list of strings"),
    # content
    ('year = 2016\n\n[content]\nachievement_max_share = "2/1"\n',
     "content.achievement_max_share", 4, "between 0 and 1"),
    ("year = 2016\n\n[content]\nachievement_max_share = 0.33\n",
     "content.achievement_max_share", 4, "inexact"),
    ('year = 2016\n\n[content]\nachievement_max_share = "a third"\n',
     "content.achievement_max_share", 4, "not a share"),
    ('year = 2016\n\n[content]\nproblems_min_share = "1/0"\n',
     "content.problems_min_share", 4, "not a share"),
    ('year = 2016\n\n[content]\nrequired_sections = ["duty", "summary"]\n',
     "content.required_sections", 4, "unknown report section"),
    ("year = 2016\n\n[content]\nmin_chars = -1\n", "content.min_chars", 4, "negative"),
    ("year = 2016\n\n[content]\nmin_chars = 10\nmax_chars = 5\n", "content.min_chars", 4,
     "above max_chars"),
    ("year = 2016\n\n[content]\nachievments = 1\n", "content.achievments", 4, "unknown"),
    # scoring (delegated) and plugins
    ('year = 2016\n\n[scoring]\nplaces = "two"\n', "scoring.places", 4, "places"),
    ("year = 2016\nscoring = 3\n", "scoring", 2, "must be a table"),
    ('year = 2016\nplugins = "webhook"\n', "plugins", 2, "list of strings"),
    ('year = 2016\nplugins = ["webhook", "webhook"]\n', "plugins[1]", 2, "twice"),
]


@pytest.mark.parametrize(("text", "field", "line", "words"), ERRORS)
def test_bad_settings_name_file_field_and_line(
    tmp_path: Path, text: str, field: str, line: int | None, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    error = info.value
    assert (field, line) == (error.field, error.line)
    assert words in str(error)
    assert str(path) in str(error)
    assert str(error).startswith(f"{path}:{line}: {field}: " if line else f"{path}: {field}: ")


def test_bad_calendar_dates_name_the_item(tmp_path: Path) -> None:
    calendar = pytest.importorskip("reviewflow.calendar")
    if not hasattr(calendar, "calendar_from_policy"):
        pytest.skip("the calendar reader is not there yet")
    text = 'year = 2016\n\n[calendar]\ndays_off = [2016-02-07, "2016-02-30"]\n'
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert info.value.field == "calendar.days_off[1]"
    assert info.value.line == 4
    good = 'year = 2016\n\n[calendar]\ndays_off = [2016-02-07]\nworking_days = ["2016-02-06"]\n'
    policy = load_policy(write(tmp_path, good))
    assert dict(policy.calendar) == {
        "days_off": (dt.date(2016, 2, 7),), "working_days": (dt.date(2016, 2, 6),)
    }
    ranges = 'year = 2016\n\n[calendar]\ndays_off = ["2016-02-07..2016-02-13"]\n'
    assert load_policy(write(tmp_path, ranges)).calendar["days_off"] == ("2016-02-07..2016-02-13",)


def test_ladders_are_read_by_the_deadlines_module_or_refused(tmp_path: Path) -> None:
    text = 'year = 2016\n\n[stages.drafting]\n\n[[stages.drafting.ladder]]\nat = "soon"\n'
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert info.value.field is not None
    assert info.value.field.startswith("stages.drafting.ladder")
    assert 5 <= (info.value.line or 0) <= 6
    if not hasattr(deadlines, "ladder_from_json"):
        assert "not supported" in str(info.value)


def test_an_empty_ladder_is_no_ladder(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "year = 2016\n[stages.drafting]\nladder = []\n"))
    assert policy.stage(Stage.DRAFTING).ladder == ()


# --------------------------------------------------------------------------- errors in the file


def test_duplicate_keys_are_reported_with_their_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'year = 2016\n\n[roles]\norganizer = "a"\norganizer = "b"\n')
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.line, info.value.field) == (5, "roles.organizer")
    assert "given twice" in str(info.value)


def test_duplicate_tables_are_reported_with_their_line(tmp_path: Path) -> None:
    text = "year = 2016\n\n[stages.drafting]\nhard = true\n\n[stages.drafting]\nhard = false\n"
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert (info.value.line, info.value.field) == (6, "stages.drafting")


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, 'year = 2016\nname = "unterminated\n'))
    assert info.value.line == 2
    assert "not valid TOML" in str(info.value)


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(PolicyError, match="no such file") as info:
        load_policy(path)
    assert str(path) == info.value.source


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy(tmp_path)


def test_a_device_is_not_a_policy_file() -> None:
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    with pytest.raises(PolicyError, match="not a regular file"):
        load_policy("/dev/null")


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes("year = 2016\n\n[roles]\norganizer = \"局党组\"\n".encode("gbk"))
    with pytest.raises(PolicyError, match="not UTF-8") as info:
        load_policy(path)
    assert info.value.line == 4


def test_a_5mb_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("year = 2016\n")
        fh.write("# padding\n" * (5 * 1024 * 1024 // 10))
    assert path.stat().st_size > 5_000_000
    with pytest.raises(PolicyError, match="larger than") as info:
        load_policy(path)
    assert str(path) == info.value.source


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    head = "year = 2016\n"
    path = write(tmp_path, head + "#" * (MAX_FILE_BYTES - len(head) - 1) + "\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_policy(path).year == 2016


@pytest.mark.parametrize(
    "nesting",
    [
        "x = " + "[" * 10_000 + "]" * 10_000 + "\n",
        "x = " + "{ a = " * 10_000 + "1" + " }" * 10_000 + "\n",
        "x." * 10_000 + "y = 1\n",
        "[" + "a." * 10_000 + "b]\n",
        "[[" + "a . " * 10_000 + "b]]\n",
        'x = [\n  { ' + '"a\\"b".' * 10_000 + "c = 1 },\n]\n",
        "x = { y = 1, " + "'a'." * 10_000 + "c = 1 }\n",
    ],
    ids=["arrays", "inline-tables", "dotted-keys", "table-header", "array-header",
         "quoted-parts-in-array", "literal-parts-in-inline-table"],
)
def test_10000_deep_nesting_is_a_policy_error(tmp_path: Path, nesting: str) -> None:
    path = write(tmp_path, "year = 2016\n" + nesting)
    with pytest.raises(PolicyError, match=r"nested too deeply|more than 32 dotted parts") as info:
        load_policy(path)
    assert info.value.line in (2, 3)
    assert str(path) == info.value.source


def test_a_1mib_dotted_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "year = 2016\n" + "a." * (MAX_FILE_BYTES // 2 - 20) + "b = 1\n")
    assert path.stat().st_size <= MAX_FILE_BYTES
    with pytest.raises(PolicyError, match="dotted parts"):
        load_policy(path)


def test_keys_with_up_to_the_limit_of_dotted_parts_reach_the_settings_check(
    tmp_path: Path,
) -> None:
    key = ".".join(["a"] * MAX_DEPTH)
    with pytest.raises(PolicyError, match="unknown setting 'a'"):
        load_policy(write(tmp_path, f"year = 2016\n{key} = 1\n"))
    with pytest.raises(PolicyError, match="dotted parts"):
        load_policy(write(tmp_path, f"year = 2016\n{key}.a = 1\n"))


def test_depth_is_checked_before_anything_else(tmp_path: Path) -> None:
    text = "year = 2016\n[stages.drafting]\ndue = " + "[" * 40 + "]" * 40 + "\n"
    with pytest.raises(PolicyError, match="nested too deeply") as info:
        load_policy(write(tmp_path, text))
    assert info.value.field is not None
    assert info.value.field.startswith("stages.drafting.due")
    assert info.value.line == 3


def test_deep_data_built_in_python_is_refused_without_recursion() -> None:
    data: dict[str, object] = {"year": 2016}
    node = data
    for _ in range(10_000):
        child: dict[str, object] = {}
        node["stages"] = child
        node = child
    with pytest.raises(PolicyError, match=f"limit is {MAX_DEPTH}"):
        policy_from_dict(data, source="generated")


def test_huge_array_of_tables_loads(tmp_path: Path) -> None:
    levels = "".join(
        f'[[approval.levels]]\nname = "level-{i}"\nroles = ["organizer"]\n' for i in range(4_000)
    )
    path = write(tmp_path, "year = 2016\n" + levels)
    assert path.stat().st_size < MAX_FILE_BYTES
    policy = load_policy(path)
    assert len(policy.approval_levels) == 4_000


def test_an_error_in_the_last_of_a_huge_array_of_tables_names_its_line(tmp_path: Path) -> None:
    n = 4_000
    levels = "".join(
        f'[[approval.levels]]\nname = "level-{i}"\nroles = ["organizer"]\n' for i in range(n - 1)
    )
    levels += '[[approval.levels]]\nname = "last"\nroles = ["nobody"]\n'
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, "year = 2016\n" + levels))
    assert f"approval.levels[{n - 1}].roles[0]" == info.value.field
    assert 1 + 3 * n == info.value.line


def test_huge_arrays_of_unknown_tables_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "year = 2016\n" + "[[bomb]]\nx = 1\n" * 15_000)
    with pytest.raises(PolicyError, match="unknown setting 'bomb'") as info:
        load_policy(path)
    assert info.value.line == 2


# --------------------------------------------------------------------------- policy_from_dict


def test_policy_from_dict_names_its_source() -> None:
    with pytest.raises(PolicyError, match=r"^campaign 7: year: ") as info:
        policy_from_dict({"year": "x"}, source="campaign 7")
    assert info.value.line is None


def test_policy_from_dict_refuses_non_tables() -> None:
    with pytest.raises(PolicyError, match="table of settings"):
        policy_from_dict([1, 2], source="x")  # type: ignore[arg-type]


def test_every_policy_file_error_is_a_reviewflow_value_error() -> None:
    with pytest.raises(ReviewflowError):
        policy_from_dict({"year": 2016, "tz": 8})
    with pytest.raises(ValueError):
        policy_from_dict({"year": 2016, "tz": 8})


def test_every_content_rule_field_is_a_policy_file_key() -> None:
    from reviewflow import policy_file

    assert {f.name for f in attrs.fields(ContentRules)} == set(policy_file._CONTENT_KEYS)


# --------------------------------------------------------------------------- the line index


def test_line_index_finds_keys_in_tables_inline_tables_and_arrays() -> None:
    text = (
        "year = 2016\n"                                   # 1
        "\n"                                              # 2
        '[stages."drafting"]  # comment\n'                # 3
        "due = { at = 2016-01-18T00:00:00+08:00 }\n"      # 4
        "grace.x = 1\n"                                   # 5
        "[[approval.levels]]\n"                           # 6
        'name = "a"\n'                                    # 7
        "[[approval.levels]]\n"                           # 8
        'roles = ["x"]\n'                                 # 9
        'description = """\n'                             # 10
        "fake = 1\n"                                      # 11
        '"""\n'                                           # 12
        "[assignments]\n"                                 # 13
        '"三中.分校" = "g"\n'                              # 14
    )
    index = _LineIndex(text)
    assert index.line_of("year") == 1
    assert index.line_of("stages.drafting") == 3
    assert index.line_of("stages.drafting.due.at") == 4
    assert index.line_of("stages.drafting.grace.x") == 5
    assert index.line_of("approval.levels[0].name.whatever") == 7
    assert index.line_of("approval.levels[1].roles[0]") == 9
    assert index.line_of("approval.levels[1].label") == 8
    assert index.line_of("stages.drafting.fake") == 3
    assert index.line_of("assignments.三中.分校") == 14
    assert index.line_of("content.min_chars") is None
    assert index.field_at(8) == "approval.levels[1]"


def test_an_integer_past_pythons_digit_limit_is_a_policy_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\n\n[stages.drafting]\nhard = ' + "9" * 5000 + "\n")
    with pytest.raises(PolicyError, match="too long to read") as info:
        load_policy(path)
    assert (info.value.source, info.value.line) == (str(path), 4)
    assert info.value.field == "stages.drafting.hard"


def test_a_symlink_to_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    link = tmp_path / "policy.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(PolicyError, match="not a regular file") as info:
        load_policy(link)
    assert info.value.source == str(link)
