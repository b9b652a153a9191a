"""Files a bureau uses: the results workbook, the 公示 notice, special-report skeletons, diagrams.

Every export is built from :func:`collect_results` rows, so they all agree.
"""

from __future__ import annotations

from reviewflow.export.diagram import dot, mermaid, svg
from reviewflow.export.notice import notice_html, notice_markdown
from reviewflow.export.results import ResultRow, collect_results, rank_rows, rows_from_cases
from reviewflow.export.special_report import special_report_skeleton
from reviewflow.export.xlsx import safe_text, write_workbook

__all__ = [
    "ResultRow",
    "collect_results",
    "dot",
    "mermaid",
    "notice_html",
    "notice_markdown",
    "rank_rows",
    "rows_from_cases",
    "safe_text",
    "special_report_skeleton",
    "svg",
    "write_workbook",
]
