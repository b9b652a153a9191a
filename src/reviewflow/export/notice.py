"""The publicity notice (公示) of a campaign's results, as Markdown and as HTML.

The HTML is a whole page with every value escaped; the Markdown escapes every
character of a value that could make it more than text (see
:func:`reviewflow.export._markdown.md_text`), raw HTML included.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from reviewflow.anchoring import Anchor
from reviewflow.export._markdown import md_text
from reviewflow.export.results import ResultRow
from reviewflow.policy import Policy

__all__ = ["notice_html", "notice_markdown"]


def _title(policy: Policy | None) -> str:
    name = (policy.name if policy is not None else "") or "述职评议考核"
    return f"关于{name}结果的公示"


def _anchor_line(anchor: Anchor) -> str:
    return (f"本公示依据的评议记录已于{anchor.date}锚定（{anchor.cases}个案例，{anchor.events}条记录），"
            f"锚点摘要（anchor digest）：{anchor.digest}。可用 reviewflow verify --anchor 核验记录未被改动。")


def _md_cell(value: object) -> str:
    return md_text(value)


def notice_markdown(
    rows: Sequence[ResultRow],
    *,
    policy: Policy | None = None,
    issuer: str = "",
    date: str = "",
    days: int = 5,
    contact: str = "",
    anchor: Anchor | None = None,
) -> str:
    """Return the 公示 notice as Markdown: the results table and how to object.

    With ``anchor`` (:meth:`Campaign.anchor`, taken after the publication), the notice
    prints its digest and date, so that the public copy of the notice anchors the record.

    >>> from decimal import Decimal
    >>> row = ResultRow(case_id="c1", organization="第一中学党支部", secretary="张三", stage="closed",
    ...                 valid=20, score=Decimal(79), rounded=Decimal("79.00"), grade="一般", rank=1)
    >>> print(notice_markdown([row], issuer="区教育局党组", date="2016-03-01").splitlines()[0])
    # 关于述职评议考核结果的公示
    """
    lines = [f"# {_md_cell(_title(policy))}", ""]
    lines.append(
        f"根据述职评议考核工作安排，现将{len(rows)}个党组织书记的述职评议考核结果予以公示，"
        f"公示期为{days}个工作日。"
    )
    lines.append("")
    lines.append("| 名次 | 党组织 | 书记 | 有效票 | 得分 | 等次 |")
    lines.append("|---:|---|---|---:|---:|---|")
    for row in rows:
        lines.append(
            f"| {row.rank or ''} | {_md_cell(row.organization)} | {_md_cell(row.secretary)} | "
            f"{row.valid} | {'' if row.rounded is None else row.rounded} | {_md_cell(row.grade)} |"
        )
    lines.append("")
    lines.append("得分 = (好×100 + 较好×80 + 一般×60 + 差×0) ÷ 有效票数。")
    lines.append("")
    lines.append("公示期间如有异议，请以书面形式向公示单位反映"
                 + (f"（联系方式：{_md_cell(contact)}）" if contact else "") + "。")
    lines.append("")
    if anchor is not None:
        lines.append(_md_cell(_anchor_line(anchor)))
        lines.append("")
    if issuer or date:
        lines.append(f"{_md_cell(issuer)}  ")
        lines.append(_md_cell(date))
        lines.append("")
    return "\n".join(lines)


def notice_html(
    rows: Sequence[ResultRow],
    *,
    policy: Policy | None = None,
    issuer: str = "",
    date: str = "",
    days: int = 5,
    contact: str = "",
    anchor: Anchor | None = None,
) -> str:
    """Return the 公示 notice as a whole HTML page, every value escaped (with ``anchor``,
    its digest and date, as in :func:`notice_markdown`).

    >>> from decimal import Decimal
    >>> row = ResultRow(case_id="c1", organization="<b>一中</b>", secretary="张三", stage="closed")
    >>> "&lt;b&gt;一中&lt;/b&gt;" in notice_html([row])
    True
    """
    e = html.escape
    title = e(_title(policy))
    body = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        '<head><meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .6em}"
        "td.n{text-align:right}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
        f"<p>根据述职评议考核工作安排，现将{len(rows)}个党组织书记的述职评议考核结果予以公示，"
        f"公示期为{days}个工作日。</p>",
        "<table>",
        "<thead><tr><th>名次</th><th>党组织</th><th>书记</th><th>有效票</th><th>得分</th>"
        "<th>等次</th></tr></thead>",
        "<tbody>",
    ]
    for row in rows:
        score = "" if row.rounded is None else str(row.rounded)
        body.append(
            f'<tr><td class="n">{row.rank or ""}</td><td>{e(row.organization)}</td>'
            f'<td>{e(row.secretary)}</td><td class="n">{row.valid}</td>'
            f'<td class="n">{e(score)}</td><td>{e(row.grade)}</td></tr>'
        )
    body += [
        "</tbody>",
        "</table>",
        "<p>得分 = (好×100 + 较好×80 + 一般×60 + 差×0) ÷ 有效票数。</p>",
        "<p>公示期间如有异议，请以书面形式向公示单位反映"
        + (f"（联系方式：{e(contact)}）" if contact else "") + "。</p>",
    ]
    if anchor is not None:
        body.append(f'<p class="anchor">{e(_anchor_line(anchor))}</p>')
    if issuer or date:
        body.append(f'<p style="text-align:right">{e(issuer)}<br>{e(date)}</p>')
    body += ["</body>", "</html>", ""]
    return "\n".join(body)
