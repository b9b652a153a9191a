"""The one lifecycle table, and the policy checked against it when it is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

import reviewflow as rf
from reviewflow import _lifecycle
from reviewflow._engine.machine import Lifecycle
from reviewflow._lifecycle import BY_NAME, FIRED, LIFECYCLE, LifecycleEvent, check
from reviewflow._steps import HANDLERS, NEEDS
from reviewflow.exceptions import PolicyError
from reviewflow.model import Stage
from reviewflow.policy import EVENT_NAMES, EVENTS, SIDE_EVENTS, Policy
from reviewflow.policy_file import load_policy


def seed(**changes: Any) -> Policy:
    return attrs.evolve(Policy.default(year=2016), **changes)


def refused(**permissions: Any) -> PolicyError:
    perms = {**Policy.default(year=2016).permissions, **permissions}
    with pytest.raises(PolicyError) as caught:
        seed(permissions=perms)
    return caught.value


# --------------------------------------------------------------------------- the table


def test_every_name_keyed_by_event_comes_from_the_table() -> None:
    assert [name for name, *_ in EVENTS] == [e.name for e in FIRED]
    assert dict(SIDE_EVENTS) == {"extend": "延期"}
    assert set(EVENT_NAMES) == set(BY_NAME) == set(HANDLERS) | set(SIDE_EVENTS)
    assert dict(Policy.default(year=2016).permissions) == {e.name: e.roles for e in LIFECYCLE}
    assert dict(NEEDS.items()) == {
        e.name: e.needs for e in FIRED if e.needs}


def test_the_machine_has_one_edge_per_row_and_two_for_a_per_level_event() -> None:
    edges = set(Lifecycle().edges())
    expected = {(e.source.value, e.name, (e.dest or e.source).value)
                for e in FIRED if e.source is not None}
    expected |= {(e.source.value, e.name, e.source.value)
                 for e in FIRED if e.per_level and e.source is not None}
    assert edges == expected


@pytest.mark.parametrize("row", [
    {"name": "x", "source": None, "dest": Stage.DRAFTING, "label": "x", "side": True},
    {"name": "x", "source": None, "dest": None, "label": "x"},
    {"name": "x", "source": Stage.DRAFTING, "dest": Stage.DRAFTING, "label": "x"},
    {"name": "x", "source": Stage.DRAFTING, "dest": None, "label": "x", "needs": ("text",)},
])
def test_a_bad_row_is_refused_when_built(row: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="x"):
        LifecycleEvent(**row)


def test_a_table_with_a_stage_nobody_reaches_is_refused() -> None:
    table = [e for e in LIFECYCLE if e.name != "hold_meeting"]
    table.append(attrs.evolve(BY_NAME["hold_meeting"], source=Stage.EVALUATION,
                              dest=Stage.GROUP_TALK))
    with pytest.raises(PolicyError, match=r"evaluation \(三评\).* cannot be reached") as caught:
        check({e.name: e.roles for e in table}, Policy.default(year=2016).approval_levels, table)
    assert caught.value.field == "permissions"


def test_a_table_with_a_stage_without_a_way_out_is_refused() -> None:
    table = [*LIFECYCLE, attrs.evolve(BY_NAME["hold_talk"], name="skip", source=Stage.RESEARCH,
                                      dest=Stage.REPORT_BACK)]
    table = [e for e in table if e.name != "hold_talk"]
    with pytest.raises(PolicyError, match=r"group_talk \(集体约谈\) has no way out"):
        check({e.name: e.roles for e in table}, Policy.default(year=2016).approval_levels, table)


# --------------------------------------------------------------------------- the policy


def test_the_default_and_the_shipped_policy_files_load() -> None:
    Policy.default(year=2016)
    load_policy(Path(rf.__file__).parent / "default_policy.toml")


@pytest.mark.parametrize("event", sorted(EVENT_NAMES))
def test_an_event_nobody_may_fire_is_a_policy_error(event: str) -> None:
    error = refused(**{event: frozenset()})
    assert error.field == f"permissions.{event}"
    assert f"no role may {event}" in str(error)


def test_the_error_says_which_stages_are_lost() -> None:
    error = refused(submit_report=frozenset())
    message = str(error)
    assert "a case in drafting (撰写述职报告) has no way out" in message
    for stage in Stage:
        if stage.order > Stage.DRAFTING.order:
            assert f"{stage.value} ({stage.label})" in message
    assert 'submit_report = ["secretary"]' in message


def test_an_event_missing_from_a_hand_built_policy_is_refused() -> None:
    perms = dict(Policy.default(year=2016).permissions)
    del perms["hold_talk"]
    with pytest.raises(PolicyError) as caught:
        seed(permissions=perms)
    assert caught.value.field == "permissions.hold_talk"
    assert "report_back (专题报告), closed (已办结) cannot be reached" in str(caught.value)


def test_an_approval_level_nobody_may_sign_is_a_policy_error() -> None:
    error = refused(sign_off=frozenset({"organizer"}))
    assert error.field == "permissions.sign_off"
    assert "approval level 1 (指导组审阅)" in str(error)
    assert "meeting (述职评议会)" in str(error)


def test_a_review_only_a_secretary_may_do_is_a_policy_error() -> None:
    """The case's secretary never signs or returns their own report; nobody else is its
    secretary: so a review left to ``secretary`` alone can never happen."""
    for event in ("sign_off", "return_for_revision"):
        error = refused(**{event: frozenset({"secretary"})})
        assert error.field == f"permissions.{event}"
        assert "never reviews their own report" in str(error)


def test_levels_of_other_roles_pass_when_sign_off_allows_them() -> None:
    levels = (rf.ApprovalLevel(name="a", roles={"party_office"}),)
    perms = {**Policy.default(year=2016).permissions, "sign_off": frozenset({"party_office"})}
    assert seed(approval_levels=levels, permissions=perms).permissions["sign_off"] == {
        "party_office"}


def test_a_policy_file_with_an_unreachable_stage_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("year = 2016\n\n[permissions]\nsubmit_report = []\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.field == "permissions.submit_report"
    assert caught.value.line == 4
    assert "cannot be reached" in str(caught.value)


def test_the_table_module_imports_only_pure_rules() -> None:
    source = Path(_lifecycle.__file__).read_text(encoding="utf-8")
    imports = {line.split()[1] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "collections.abc", "typing", "attrs",
                       "reviewflow.exceptions", "reviewflow.model"}
