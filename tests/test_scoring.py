"""Scores, grades, quotas, vetoes and ranks: known answers, policy variants, properties."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewflow.ballots import tally
from reviewflow.exceptions import PolicyError, ReviewflowError, ScoringError
from reviewflow.policy import Policy
from reviewflow.scoring import (
    Channel,
    GradeBand,
    GradeScale,
    Quota,
    Rounding,
    ScaleLevel,
    ScoringPolicy,
    Veto,
    composite_score,
    grade_cases,
    rank_competition,
    satisfaction_score,
    score,
    score_table,
)

SEED = {"good": 10, "fairly_good": 5, "average": 3, "poor": 2}


# --------------------------------------------------------------------------- known answers


def test_seed_formula_gives_79_for_10_5_3_2() -> None:
    assert Decimal("79") == satisfaction_score(SEED)
    assert Decimal("79.00") == score(SEED).rounded


def test_chinese_labels_are_accepted_as_keys() -> None:
    assert satisfaction_score(SEED) == satisfaction_score({"好": 10, "较好": 5, "一般": 3, "差": 2})


def test_half_up_boundary_where_float_rounding_differs() -> None:
    # 100 好, 30 较好, 7 一般, 23 差: 12820 / 160 = 80.125 exactly
    counts = {"good": 100, "fairly_good": 30, "average": 7, "poor": 23}
    result = score(counts)
    assert Decimal("80.125") == result.value
    assert Decimal("80.13") == result.rounded
    assert round(12820 / 160, 2) == 80.12  # what float rounding would have published
    assert Decimal("80.12") == score(counts, rounding=Rounding(mode="half_even")).rounded


def test_unrounded_value_is_kept_for_repeating_decimals() -> None:
    result = score({"good": 1, "fairly_good": 1, "average": 1})
    assert Fraction(80) == result.fraction
    result = score({"good": 2, "poor": 1})
    assert Fraction(200, 3) == result.fraction
    assert Decimal("66.67") == result.rounded
    assert str(result.value).startswith("66.666666")


@pytest.mark.parametrize(("places", "expected"), [(0, "67"), (1, "66.7"), (3, "66.667")])
def test_places_are_a_declared_rule(places: int, expected: str) -> None:
    assert Decimal(expected) == score({"good": 2, "poor": 1}, rounding=Rounding(places=places)).rounded


@pytest.mark.parametrize("counts", [
    {"excellent": 3},
    {"good": -1},
    {"good": 1.5},
    {"good": True},
    {"good": 1, "好": 2},
])
def test_bad_counts_are_scoring_errors(counts: dict[str, Any]) -> None:
    with pytest.raises(ScoringError) as info:
        satisfaction_score(counts)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ReviewflowError)


def test_zero_valid_ballots_is_an_error_not_a_division_by_zero() -> None:
    with pytest.raises(ScoringError, match="no valid ballots"):
        satisfaction_score({"good": 0, "poor": 0})
    with pytest.raises(ScoringError):
        satisfaction_score({})


def test_explain_shows_counts_formula_and_rounding() -> None:
    text = score(SEED).explain()
    assert "好 10" in text
    assert "(好 10×100 + 较好 5×80 + 一般 3×60 + 差 2×0) ÷ 20 = 1580 ÷ 20 = 79" in text
    assert "rounded: 79.00 (2 places, half-up)" in text


# --------------------------------------------------------------------------- scales


def test_five_level_scale() -> None:
    scale = GradeScale.five_level()
    counts = {"很满意": 6, "满意": 2, "基本满意": 1, "不太满意": 1, "不满意": 0}
    assert Decimal("85") == satisfaction_score(counts, scale)


def test_option_outside_the_denominator_is_not_a_valid_ballot_for_the_score() -> None:
    scale = GradeScale(levels=(
        ScaleLevel(key="satisfied", label="满意", points=100),
        ScaleLevel(key="basic", label="基本满意", points=70),
        ScaleLevel(key="dissatisfied", label="不满意", points=30),
        ScaleLevel(key="unknown", label="不了解", points=0, in_denominator=False),
    ))
    result = score({"满意": 1, "基本满意": 1, "不满意": 0, "不了解": 8}, scale)
    assert Decimal("85") == result.value
    assert result.valid == 2
    assert "outside the denominator: 不了解 8" in result.explain()
    with pytest.raises(ScoringError):
        satisfaction_score({"不了解": 5}, scale)


def test_valid_option_scoring_nothing_counts_in_the_denominator() -> None:
    assert Decimal("50") == satisfaction_score({"good": 1, "poor": 1})


@pytest.mark.parametrize(("levels", "field"), [
    ((), "scoring.scale"),
    ((ScaleLevel(key="a", label="x", points=1), ScaleLevel(key="b", label="x", points=0)),
     "scoring.scale[1]"),
    ((ScaleLevel(key="a", label="", points=-1),), "scoring.scale[0].points"),
    ((ScaleLevel(key="a", label="", points=5, in_denominator=False),),
     "scoring.scale[0].points"),
])
def test_bad_scales_are_refused_naming_the_field(levels: tuple[ScaleLevel, ...], field: str) -> None:
    with pytest.raises(PolicyError) as info:
        GradeScale(levels=levels)
    assert field == info.value.field


# --------------------------------------------------------------------------- channels


def _weights(*channels: tuple[str, str, int]) -> ScoringPolicy:
    return ScoringPolicy(channels=[Channel(key=k, kind=kind, weight=w) for k, kind, w in channels])


def test_composite_30_30_40() -> None:
    policy = _weights(("routine", "number", 30), ("verification", "number", 30), ("vote", "vote", 40))
    result = composite_score({"routine": 90, "verification": "85.5", "vote": SEED}, policy)
    # (30×90 + 30×85.5 + 40×79) / 100 = 84.25
    assert Decimal("84.25") == result.value
    assert "composite = (30×90 + 30×85.5 + 40×79) ÷ 100 = 84.25" in result.explain()
    assert {"routine", "verification", "vote"} == set(result.parts)


def test_channel_scores_are_not_rounded_before_combining() -> None:
    policy = _weights(("a", "vote", 50), ("b", "number", 50))
    result = composite_score({"a": {"good": 2, "poor": 1}, "b": 0}, policy)
    assert Fraction(100, 3) == result.fraction
    assert Decimal("33.33") == result.rounded


def test_comment_rating_by_option_or_number() -> None:
    policy = ScoringPolicy(channels=[
        Channel(key="superior", kind="comment", weight="0.5"),
        Channel(key="vote", kind="vote", weight="0.5"),
    ])
    assert Decimal("89.5") == composite_score({"superior": "好", "vote": SEED}, policy).value
    assert Decimal("89.5") == composite_score(
        {"superior": {"text": "...", "rating": 100}, "vote": SEED}, policy).value
    with pytest.raises(ScoringError, match="between 0 and 100"):
        composite_score({"superior": 101, "vote": SEED}, policy)
    with pytest.raises(ScoringError, match="no input for channel 'superior'"):
        composite_score({"vote": SEED}, policy)
    with pytest.raises(ScoringError, match="unknown channel"):
        composite_score({"vote": SEED, "peer": 3}, policy)
    with pytest.raises(ScoringError):
        composite_score({"superior": 90.5, "vote": SEED}, policy)  # floats are refused


def test_weights_must_add_up_at_build_time() -> None:
    with pytest.raises(PolicyError) as info:
        _weights(("a", "number", 30), ("b", "vote", 60))
    assert info.value.field == "scoring.channels"
    assert "add up to 90" in str(info.value)


def test_seed_default_scores_the_vote_only_and_records_comments() -> None:
    policy = ScoringPolicy()
    assert Decimal("79") == composite_score({"vote": SEED}, policy).value
    assert {"superior_comment", "delegate_comment", "vote"} == {c.key for c in policy.channels}
    assert ScoringPolicy() == Policy.default(year=2016).scoring


# --------------------------------------------------------------------------- grades


def _vote(points: str) -> dict[str, Any]:
    return {"vote": Decimal(points)}


def _number_policy(**kw: Any) -> ScoringPolicy:
    return ScoringPolicy(channels=[Channel(key="vote", kind="number", weight=100)], **kw)


def _grades(policy: ScoringPolicy, scores: dict[str, str], **kw: Any) -> dict[str, str]:
    results = grade_cases({k: _vote(v) for k, v in scores.items()}, policy, **kw)
    return {r.case_id: r.grade.key for r in results}


def test_bands_give_grades_at_their_boundaries() -> None:
    policy = _number_policy()
    got = _grades(policy, {"a": "90", "b": "89.99", "c": "80", "d": "60", "e": "59.99", "f": "0"})
    assert got == {"a": "good", "b": "fairly_good", "c": "fairly_good", "d": "average",
            "e": "poor", "f": "poor"}


def test_bands_compare_the_published_score_by_default() -> None:
    scores = {"a": "89.995"}
    assert _grades(_number_policy(), scores)["a"] == "good"  # shown as 90.00
    assert _grades(_number_policy(compare="exact"), scores)["a"] == "fairly_good"


def test_quota_demotes_the_lowest_scores_above_it_one_grade() -> None:
    policy = _number_policy(quotas=[Quota(grade="good", max_share="3/10")])
    scores = {f"c{i}": str(99 - i) for i in range(5)} | {f"d{i}": "70" for i in range(5)}
    results = {r.case_id: r for r in grade_cases({k: _vote(v) for k, v in scores.items()}, policy)}
    assert sorted(k for k, r in results.items() if r.grade.key == "good") == ["c0", "c1", "c2"]
    assert results["c3"].grade.key == "fairly_good"
    assert results["c3"].band.key == "good"
    assert "quota" in results["c3"].explain()


def test_quota_ties_at_the_cut_move_down_together_or_stay_together() -> None:
    scores = {"a": "99", "b": "95", "c": "95", "d": "70", "e": "70", "f": "70",
              "g": "70", "h": "70", "i": "70", "j": "70"}
    demote = _number_policy(quotas=[Quota(grade="good", max_share="2/10")])
    got = _grades(demote, scores)
    assert (got["a"], got["b"], got["c"]) == ("good", "fairly_good", "fairly_good")
    keep = _number_policy(quotas=[Quota(grade="good", max_share="2/10", ties="keep")])
    got = _grades(keep, scores)
    assert (got["a"], got["b"], got["c"]) == ("good", "good", "good")


def test_quota_by_count_and_cascading_quotas() -> None:
    policy = _number_policy(quotas=[Quota(grade="good", max_count=1),
                                    Quota(grade="fairly_good", max_count=1)])
    got = _grades(policy, {"a": "99", "b": "98", "c": "97"})
    assert got == {"a": "good", "b": "fairly_good", "c": "average"}


def test_veto_caps_the_grade_and_does_not_use_up_a_quota() -> None:
    policy = _number_policy(
        vetoes=[Veto(condition="discipline", cap="fairly_good", label="受党纪处分")],
        quotas=[Quota(grade="good", max_count=1)],
    )
    results = grade_cases({"a": _vote("99"), "b": _vote("95")}, policy,
                          conditions={"a": ["discipline"]})
    by_id = {r.case_id: r for r in results}
    assert by_id["a"].grade.key == "fairly_good"
    assert by_id["b"].grade.key == "good"
    assert by_id["a"].rank == 1
    assert "veto: 受党纪处分" in by_id["a"].explain()
    with pytest.raises(ScoringError, match="unknown veto condition"):
        grade_cases({"a": _vote("99")}, policy, conditions={"a": ["typo"]})


def test_follow_ups_by_grade() -> None:
    results = grade_cases({"a": _vote("95"), "b": _vote("65"), "c": _vote("10")}, _number_policy())
    assert [r.follow_ups for r in results] == [(), ("talk",), ("talk", "rectification_list")]
    assert "follow-up: talk (约谈), rectification_list (整改清单)" in results[2].explain()


def test_ranks_share_ties() -> None:
    assert rank_competition([90, 85, 85, 70]) == [1, 2, 2, 4]
    results = grade_cases({"a": _vote("90"), "b": _vote("85"), "c": _vote("85"),
                           "d": _vote("70")}, _number_policy())
    assert [r.rank for r in results] == [1, 2, 2, 4]


def test_score_table_equals_grade_cases_and_explains() -> None:
    policy = ScoringPolicy(quotas=[Quota(grade="good", max_share="1/2")],
                           vetoes=[Veto(condition="x", cap="average")])
    tallies = [(10, 0, 0, 0), (9, 0, 0, 1), (19, 0, 1, 0), (5, 0, 0, 5)]
    table = score_table(tallies, policy, conditions={0: ["x"]})
    ids = [str(i) for i in range(4)]
    results = grade_cases({i: dict(zip(policy.scale.keys, t, strict=True))
                           for i, t in zip(ids, tallies, strict=True)},
                          policy, conditions={"0": ["x"]})
    assert [r.grade.key for r in results] == [table.grade(i).key for i in range(4)]
    assert [r.rank for r in results] == table.ranks
    assert [r.score.rounded for r in results] == table.scores()
    assert results[1].explain() == table.result(1).explain()


def test_score_table_names_a_bad_tally() -> None:
    with pytest.raises(ScoringError, match="position 1"):
        score_table([(1, 0, 0, 0), (0, 0, 0, 0)])
    with pytest.raises(ScoringError, match="position 0"):
        score_table([(1, -1, 0, 0)])


# --------------------------------------------------------------------------- policy data


def test_policy_round_trips_through_plain_data() -> None:
    policy = ScoringPolicy(
        scale=GradeScale.five_level(), places=1, rounding="half_even",
        quotas=[Quota(grade="good", max_share="3/10")],
        vetoes=[Veto(condition="discipline", cap="fairly_good")],
    )
    assert policy == ScoringPolicy.from_json(policy.to_json())


@pytest.mark.parametrize(("data", "field"), [
    ({"places": 9}, "scoring.places"),
    ({"rounding": "banker"}, "scoring.rounding"),
    ({"channels": [{"key": "vote", "kind": "vote", "weight": 40}]}, "scoring.channels"),
    ({"channels": [{"key": "vote", "kind": "poll", "weight": 100}]}, "scoring.channels[0].kind"),
    ({"bands": [{"key": "good", "min": 90}]}, "scoring.bands[0].min"),
    ({"bands": [{"key": "a", "min": 50}, {"key": "b", "min": 60}]}, "scoring.bands[1].min"),
    ({"quotas": [{"grade": "best", "max_share": "1/3"}]}, "scoring.quotas[0].grade"),
    ({"quotas": [{"grade": "good", "max_share": "x/3"}]}, "scoring.quotas[0].max_share"),
    ({"vetoes": [{"condition": "c", "cap": "nope"}]}, "scoring.vetoes[0].cap"),
    ({"follow_ups": {"bad": ["talk"]}}, "scoring.follow_ups.bad"),
    ({"vote": {"quorum": "3/2"}}, "scoring.vote.quorum"),
    ({"vote": {"grassroots": ["martians"]}}, "scoring.vote.grassroots"),
    ({"vote": {"colour": 1}}, "scoring.vote.colour"),
    ({"publication": {"publicity_days": -1}}, "scoring.publication.publicity_days"),
    ({"scale": [{"key": "a"}]}, "scoring.scale[0]"),
    ({"weights": 1}, "scoring.weights"),
])
def test_bad_policy_data_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as info:
        ScoringPolicy.from_json(data)
    assert field == info.value.field


def test_field_prefix_follows_the_caller() -> None:
    with pytest.raises(PolicyError) as info:
        ScoringPolicy.from_json({"places": 9}, field="campaign.scoring")
    assert info.value.field == "campaign.scoring.places"


# --------------------------------------------------------------------------- local variants

# Each row: a place's rule from research/domain-rules.md, written as policy-file data,
# the inputs of a case, and the known answer (rounded score, grade).
VARIANTS: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("seed 好100/较好80/一般60/差0", {}, {"vote": SEED}, "79.00", "average"),
    ("5-level 很满意100…不满意0 (组织工作满意度)",
     {"scale": [{"key": "vs", "label": "很满意", "points": 100},
                {"key": "s", "label": "满意", "points": 80},
                {"key": "bs", "label": "基本满意", "points": 60},
                {"key": "ns", "label": "不太满意", "points": 30},
                {"key": "d", "label": "不满意", "points": 0}]},
     {"vote": {"很满意": 5, "满意": 3, "基本满意": 1, "不太满意": 1, "不满意": 1}},
     "75.45", "average"),
    ("county conduct survey, 不了解 outside the denominator",
     {"scale": [{"key": "s", "label": "满意", "points": 100},
                {"key": "bs", "label": "基本满意", "points": 70},
                {"key": "d", "label": "不满意", "points": 30},
                {"key": "u", "label": "不了解", "points": 0, "counted": False}]},
     {"vote": {"满意": 3, "基本满意": 1, "不满意": 0, "不了解": 6}}, "92.50", "good"),
    ("隆回 routine 30 : verification 30 : vote 40",
     {"channels": [{"key": "routine", "kind": "number", "weight": 30},
                   {"key": "verification", "kind": "number", "weight": 30},
                   {"key": "vote", "kind": "vote", "weight": 40}]},
     {"routine": 88, "verification": 92, "vote": SEED}, "85.60", "fairly_good"),
    ("桃源 plenum vote 24 + home-unit vote 16 of 100, rest routine",
     {"channels": [{"key": "plenum", "kind": "vote", "weight": 24},
                   {"key": "unit", "kind": "vote", "weight": 16},
                   {"key": "routine", "kind": "number", "weight": 60}]},
     {"plenum": {"good": 30, "fairly_good": 10}, "unit": {"good": 8, "average": 2},
      "routine": 90}, "91.52", "good"),
    ("锦州凌河 committee members' scores 10%",
     {"channels": [{"key": "committee", "kind": "number", "weight": "0.1"},
                   {"key": "performance", "kind": "number", "weight": "0.9"}]},
     {"committee": 70, "performance": 80}, "79.00", "average"),
    ("蒲县 target 70 + anonymous vote 20 + inspection 10",
     {"channels": [{"key": "target", "kind": "number", "weight": 70},
                   {"key": "vote", "kind": "vote", "weight": 20},
                   {"key": "inspection", "kind": "number", "weight": 10}]},
     {"target": 90, "vote": {"good": 3, "fairly_good": 1}, "inspection": 100}, "92.00", "good"),
    ("star rating ≥90/80/70/60/<60",
     {"bands": [{"key": "five", "label": "五星", "min": 90}, {"key": "four", "label": "四星", "min": 80},
                {"key": "three", "label": "三星", "min": 70}, {"key": "two", "label": "二星", "min": 60},
                {"key": "one", "label": "一星", "min": 0}], "follow_ups": {}},
     {"vote": SEED}, "79.00", "three"),
    ("provincial 90 优秀 / 80 良好 / below 一般",
     {"bands": [{"key": "excellent", "label": "优秀", "min": 90},
                {"key": "good", "label": "良好", "min": 80},
                {"key": "average", "label": "一般", "min": 0}],
      "follow_ups": {"average": ["talk"]}},
     {"vote": {"good": 17, "fairly_good": 3}}, "97.00", "excellent"),
    ("comments rated and weighted with the vote",
     {"channels": [{"key": "superior", "kind": "comment", "weight": 25, "role": "superior_secretary"},
                   {"key": "delegate", "kind": "comment", "weight": 25, "role": "department_delegate"},
                   {"key": "vote", "kind": "vote", "weight": 50}]},
     {"superior": "较好", "delegate": "好", "vote": SEED}, "84.50", "fairly_good"),
]


@pytest.mark.parametrize(("name", "data", "inputs", "rounded", "grade"), VARIANTS,
                         ids=[v[0] for v in VARIANTS])
def test_local_variant_as_policy(name: str, data: dict[str, Any], inputs: dict[str, Any],
                                 rounded: str, grade: str) -> None:
    policy = ScoringPolicy.from_json(data)
    result = grade_cases({"case": inputs}, policy)[0]
    assert Decimal(rounded) == result.score.rounded
    assert grade == result.grade.key
    assert policy == ScoringPolicy.from_json(policy.to_json())


def test_variant_star_rating_with_five_stars_capped_at_30_percent() -> None:
    policy = ScoringPolicy.from_json({
        "channels": [{"key": "v", "kind": "number", "weight": 100}],
        "bands": [{"key": "five", "min": 90}, {"key": "four", "min": 80},
                  {"key": "three", "min": 0}],
        "quotas": [{"grade": "five", "max_share": "30%".replace("%", "/100")}],
        "follow_ups": {},
    })
    results = grade_cases({f"b{i}": {"v": 91 + i} for i in range(7)}, policy)
    assert sum(r.grade.key == "five" for r in results) == 2  # floor(0.3 × 7)


def test_variant_at_most_three_at_90_or_more() -> None:
    policy = ScoringPolicy.from_json({"quotas": [{"grade": "good", "max_count": 3}]})
    tallies = {f"b{i}": {"good": 10 - (i % 2), "fairly_good": i % 2} for i in range(6)}
    results = grade_cases(tallies, policy)
    assert sum(r.grade.key == "good" for r in results) == 3


def test_variant_may_not_be_graded_good_veto() -> None:
    policy = ScoringPolicy.from_json(
        {"vetoes": [{"condition": "major_incident", "cap": "fairly_good", "label": "不得评定为好等次"}]})
    result = grade_cases({"b": {"good": 10}}, policy, conditions={"b": {"major_incident"}})[0]
    assert (result.band.key, result.grade.key) == ("good", "fairly_good")


@pytest.mark.parametrize(("data", "attr", "expected"), [
    ({"vote": {"quorum": "2/3"}}, "quorum", Fraction(2, 3)),
    ({"vote": {"quorum": "4/5"}}, "quorum", Fraction(4, 5)),
    ({"vote": {"quorum": 0.5}}, "quorum", Fraction(1, 2)),
    ({"vote": {"min_grassroots_share": "1/2"}}, "min_grassroots_share", Fraction(1, 2)),
    ({"vote": {"blank": "invalid"}}, "blank", "invalid"),
])
def test_vote_rule_variants(data: dict[str, Any], attr: str, expected: Any) -> None:
    assert expected == getattr(ScoringPolicy.from_json(data).vote, attr)


def test_publicity_variant() -> None:
    policy = ScoringPolicy.from_json({"publication": {"scope": "全区教育系统", "publicity_days": 5}})
    assert (policy.publication.publicity_days, policy.publication.scope) == (5, "全区教育系统")


# --------------------------------------------------------------------------- properties

counts_st = st.fixed_dictionaries({
    k: st.integers(min_value=0, max_value=100) for k in ("good", "fairly_good", "average", "poor")
}).filter(lambda c: sum(c.values()) > 0)


@settings(max_examples=100, deadline=None)
@given(counts_st, st.randoms(use_true_random=False))
def test_score_is_independent_of_ballot_order(counts: dict[str, int], rnd: random.Random) -> None:
    ballots = [k for k, n in counts.items() for _ in range(n)]
    rnd.shuffle(ballots)
    assert satisfaction_score(counts) == satisfaction_score(tally(ballots).counts)


@settings(max_examples=150, deadline=None)
@given(counts_st)
def test_adding_a_good_ballot_never_lowers_the_score(counts: dict[str, int]) -> None:
    more = counts | {"good": counts["good"] + 1}
    assert satisfaction_score(more) >= satisfaction_score(counts)
    assert score(more).rounded >= score(counts).rounded


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 12)] * 4).filter(lambda t: sum(t) > 0),
                min_size=1, max_size=25),
       st.sampled_from(["1/10", "3/10", "1/2"]), st.sampled_from(["demote", "keep"]),
       st.sampled_from(["rounded", "exact"]))
def test_score_table_agrees_with_grade_cases(tallies: list[tuple[int, ...]], share: str,
                                             ties: str, compare: str) -> None:
    policy = ScoringPolicy(quotas=[Quota(grade="good", max_share=share, ties=ties)],
                           compare=compare)
    table = score_table(tallies, policy)
    results = grade_cases({str(i): dict(zip(policy.scale.keys, t, strict=True))
                           for i, t in enumerate(tallies)}, policy)
    assert [r.grade.key for r in results] == [table.grade(i).key for i in range(len(tallies))]
    assert [r.rank for r in results] == table.ranks
    n_good = sum(r.grade.key == "good" for r in results)
    if ties == "demote":
        assert n_good <= int(Fraction(share) * len(tallies))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=40))
def test_competition_ranks(keys: list[int]) -> None:
    ranks = rank_competition(keys)
    for k, r in zip(keys, ranks, strict=True):
        assert r == 1 + sum(other > k for other in keys)


def test_grade_band_min_must_reach_zero() -> None:
    with pytest.raises(PolicyError, match="must start at 0"):
        ScoringPolicy(bands=[GradeBand(key="pass", min_score=60)])
