"""A skeleton of the special report (专题报告) for one case, as Markdown to fill in.

It carries what reviewflow knows: the stage dates, the comments and score, the
problems found in the research and in the report, and a rectification list
(整改清单) with one line per problem for the secretary to complete. Every value from
the case goes through :func:`reviewflow.export._markdown.md_text`, so a name or comment
renders as its text and nothing else, even where raw HTML is allowed.
"""

from __future__ import annotations

from typing import Any

from reviewflow.export._markdown import md_text
from reviewflow.export.results import ResultRow
from reviewflow.model import Case, Stage

__all__ = ["special_report_skeleton"]


def _line(text: object) -> str:
    return md_text(text)


def special_report_skeleton(case: Case, row: ResultRow | None = None) -> str:
    """Return a Markdown skeleton of the case's special report (专题报告).

    >>> from reviewflow.model import Actor
    >>> case = Case("2016", "c1", "第一中学党支部", Actor("zhang", "张三"),
    ...             data={"problems": ["组织生活不规范"]})
    >>> print(special_report_skeleton(case).splitlines()[0])
    # 第一中学党支部党组织书记抓党建工作述职评议整改专题报告
    """
    data: dict[str, Any] = case.data
    out = [f"# {_line(case.organization)}党组织书记抓党建工作述职评议整改专题报告", ""]
    out.append(f"- 书记：{_line(case.secretary.name or case.secretary.id)}")
    out.append(f"- 案例编号：{_line(case.case_id)}")
    out.append(f"- 当前阶段：{case.stage.label}（{case.stage.value}）")
    out.append("")
    out.append("## 一、各环节时间")
    out.append("")
    entered = data.get("entered", {})
    for stage in Stage:
        if stage.value in entered:
            out.append(f"- {stage.label}：{_line(str(entered[stage.value])[:16].replace('T', ' '))}")
    meeting = data.get("meeting")
    if isinstance(meeting, dict) and meeting.get("date"):
        out.append(f"- 述职评议会召开日期：{_line(meeting['date'])}")
    out.append("")
    out.append("## 二、评议情况")
    out.append("")
    comments = data.get("comments", {})
    for channel, label in (("superior_secretary", "上级党组织书记点评"),
                           ("department_delegate", "上级党组织部门派员点评")):
        comment = comments.get(channel)
        if isinstance(comment, dict):
            line = f"- {label}：{_line(comment.get('text', ''))}"
            earlier = comment.get("earlier") or ()
            if earlier:  # an amended comment shows what it amends and why
                first = "；".join(_line(e.get("text", "")) for e in earlier)
                line += f"（已修改，原点评：{first}；修改理由：{_line(comment.get('reason', ''))}）"
            out.append(line)
    if row is not None and row.rounded is not None:
        from reviewflow.export.results import OPTIONS

        labels = {key: label for key, label, _p in OPTIONS}
        counts = "，".join(f"{labels.get(k, k)} {v}" for k, v in row.counts.items())
        out.append(f"- 现场测评：有效票 {row.valid}（{counts}），得分 {row.rounded}，等次 {_line(row.grade)}"
                   + (f"，名次 {row.rank}" if row.rank else ""))
    else:
        evaluation = data.get("evaluation")
        if isinstance(evaluation, dict):
            out.append(f"- 现场测评得分：{_line(evaluation.get('rounded', evaluation.get('score', '')))}")
    out.append("")
    out.append("## 三、存在的问题")
    out.append("")
    problems: list[str] = [str(p) for p in data.get("problems", [])]
    report = data.get("report") or {}
    for p in report.get("problems", []):
        desc = str(p.get("description", ""))
        if desc and desc not in problems:
            problems.append(desc)
    for i, problem in enumerate(problems, 1):
        out.append(f"{i}. {_line(problem)}")
    if not problems:
        out.append("（无）")
    out.append("")
    out.append("## 四、整改清单")
    out.append("")
    out.append("| 序号 | 问题 | 整改措施 | 责任人 | 完成时限 | 完成情况 |")
    out.append("|---:|---|---|---|---|---|")
    measures = {str(p.get("description", "")): str(p.get("measure", ""))
                for p in report.get("problems", [])}
    for i, problem in enumerate(problems, 1):
        out.append(f"| {i} | {_line(problem)} | {_line(measures.get(problem, ''))} | | | |")
    out.append("")
    out.append("## 五、下一步工作打算")
    out.append("")
    out.append("（请填写）")
    out.append("")
    return "\n".join(out)
