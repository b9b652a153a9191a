"""Report content rules (四个讲清楚, 写成绩不超过1/3), as a pure function.

>>> from reviewflow.model import Problem, Report
>>> from reviewflow.policy import ContentRules
>>> report = Report(duty="履职" * 10, progress="推进" * 10,
...                 problems=[Problem(description="组织生活不规范", causes="", measure="")],
...                 plans="计划" * 40)
>>> for finding in check_report(report, ContentRules()):
...     print(finding.code)
problem_without_cause
problem_without_measure
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import attrs

from reviewflow.model import Report

__all__ = ["Finding", "check_report"]

_SECTION_LABELS = {
    "duty": "个人履职情况 (duty)",
    "progress": "本年度工作推进情况 (progress)",
    "problems": "存在问题及原因 (problems)",
    "plans": "下一步工作思路 (plans)",
    "rectified": "上年度问题整改情况 (rectified)",
}


@attrs.frozen
class Finding:
    """One way a report breaks a content rule: a stable code and a message a person can act on."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def check_report(
    report: Report,
    rules: object,
    *,
    carried_over: Iterable[str] = (),
) -> list[Finding]:
    """Return every finding against ``rules`` (a :class:`~reviewflow.policy.ContentRules`).

    ``carried_over`` lists last year's problems, each of which must be addressed
    in ``report.rectified`` when the rules require it. An empty list means the
    report passes.
    """
    from reviewflow.policy import ContentRules

    assert isinstance(rules, ContentRules)  # narrowing for type checkers only
    findings: list[Finding] = []
    lengths = {name: len(report.section_text(name)) for name in _SECTION_LABELS}
    total = sum(lengths.values())
    for section in rules.required_sections:
        if lengths[section] == 0:
            findings.append(Finding(
                "missing_section",
                f"section {_SECTION_LABELS[section]} is empty; 四个讲清楚 requires it",
            ))
    if rules.achievement_max_share is not None and total:
        achieved = sum(lengths[s] for s in rules.achievement_sections)
        cap = rules.achievement_max_share
        # integer cross-multiplication: exact, and cheaper than building a Fraction
        if achieved * cap.denominator > cap.numerator * total:
            share = Fraction(achieved, total)
            findings.append(Finding(
                "achievements_too_long",
                f"achievements take {_pct(share)} of the report ({achieved} of {total} characters); "
                f"at most {rules.achievement_max_share} is allowed (写成绩不超过"
                f"{rules.achievement_max_share}): shorten "
                + " and ".join(rules.achievement_sections),
            ))
    floor = rules.problems_min_share
    if floor is not None and total and lengths["problems"] * floor.denominator < floor.numerator * total:
        share = Fraction(lengths["problems"], total)
        findings.append(Finding(
            "problems_too_short",
            f"problems take {_pct(share)} of the report; at least "
            f"{rules.problems_min_share} is required: say more about problems and causes",
        ))
    if rules.min_chars is not None and total < rules.min_chars:
        findings.append(Finding(
            "too_short", f"the report has {total} characters; at least {rules.min_chars} needed",
        ))
    if rules.max_chars is not None and total > rules.max_chars:
        findings.append(Finding(
            "too_long", f"the report has {total} characters; at most {rules.max_chars} allowed",
        ))
    if rules.require_cause_and_measure:
        for i, problem in enumerate(report.problems, 1):
            if not problem.causes.strip():
                findings.append(Finding(
                    "problem_without_cause",
                    f"problem {i} ({problem.description[:20]}) has no causes; give subjective "
                    f"and objective causes (主客观原因)",
                ))
            if not problem.measure.strip():
                findings.append(Finding(
                    "problem_without_measure",
                    f"problem {i} ({problem.description[:20]}) has no measure; give one measure "
                    f"per problem (一条一条提出解决方案)",
                ))
    if rules.require_carry_over:
        for old in carried_over:
            if not str(report.rectified.get(old, "")).strip():
                findings.append(Finding(
                    "carry_over_unaddressed",
                    f"last year's problem {old!r} is not addressed; say how it was rectified "
                    f"(整改落实情况) under rectified",
                ))
    return findings


def _pct(share: Fraction) -> str:
    return f"{float(share) * 100:.1f}%"
