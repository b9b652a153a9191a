"""Every HTML and Markdown export, filled with hostile names and texts, opened in a real
headless Chromium: no payload may run, no element may carry an event handler or a
``javascript:`` URL, and every payload must still read as the text it was.

Markdown is rendered as CommonMark with raw HTML allowed (``markdown-it-py``), as most
wikis and viewers do. Without Chromium the tests skip with the reason shown, unless
``REVIEWFLOW_REQUIRE_BROWSER=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reviewflow.export.notice import notice_html, notice_markdown
from reviewflow.export.results import ResultRow
from reviewflow.export.special_report import special_report_skeleton
from reviewflow.model import Actor, Case

REQUIRE_BROWSER = os.environ.get("REVIEWFLOW_REQUIRE_BROWSER") == "1"
BROWSER = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))
                if p), None)

#: Each payload would set ``document.body.dataset.mN`` to "pwned" (built at run time, so the
#: word never appears in the page's text).
_SET = "void(document.body.dataset.m{n}='pw'+'ned')"
_TEMPLATES = (
    "<img src=x onerror=\"{js}\">",
    "<script>{js}</script>",
    "<svg onload=\"{js}\"></svg>",
    "<svg><script>{js}</script></svg>",
    "<iframe srcdoc=\"<script>{parent_js}</script>\"></iframe>",
    "[click me](javascript:{js})",
    "![logo](javascript:{js})",
    "<javascript:{js}>",
    "[x]( <javascript:{js}> )",
    "<a href=\"javascript:{js}\">link</a>",
    "<a href=\"jav&#x09;ascript:{js}\">tab</a>",
    "&lt;img src=x onerror=\"{js}\"&gt;",
    "&#60;img src=x onerror=\"{js}\"&#62;",
    "\"><img src=x onerror=\"{js}\">",
    "</td></tr></table><img src=x onerror=\"{js}\">",
    "<details open ontoggle=\"{js}\">",
    "`code` **bold** <b onmouseover=\"{js}\">b</b>",
    "1. <img src=x onerror=\"{js}\">",
    "- <img src=x onerror=\"{js}\">",
    "# <img src=x onerror=\"{js}\">",
    "> <img src=x onerror=\"{js}\">",
    "\\<img src=x onerror=\"{js}\">",
    "a\\*b\\\\<style onload=\"{js}\">",
)
PAYLOADS = [t.format(js=_SET.format(n=i), parent_js=_SET.format(n=i).replace("document", "parent.document"))
            for i, t in enumerate(_TEMPLATES)]

#: A trusted script added after the export: it clicks every link (a javascript: URL would
#: run), then lists what must not be there and the payloads that do not read as text.
_HARNESS = """
<script id="rf-harness">
(function () {
  var bad = [];
  document.querySelectorAll('a').forEach(function (a) { try { a.click(); } catch (e) {} });
  document.querySelectorAll('*').forEach(function (el) {
    if (el.tagName === 'SCRIPT' && ['rf-harness', 'rf-expected'].indexOf(el.id) < 0)
      bad.push('script element');
    if (['IFRAME', 'IMG', 'DETAILS', 'svg', 'EMBED', 'OBJECT'].indexOf(el.tagName) >= 0)
      bad.push(el.tagName + ' element');
    for (var i = 0; i < el.attributes.length; i++) {
      var at = el.attributes[i], v = at.value.replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
      if (/^on/i.test(at.name)) bad.push('handler ' + at.name);
      if (/^(javascript|vbscript|data):/.test(v)) bad.push('url ' + at.name + '=' + at.value);
    }
  });
  var text = document.body.textContent.replace(/\\s+/g, ' ');
  var expected = JSON.parse(document.getElementById('rf-expected').textContent);
  var missing = expected.filter(function (p) { return text.indexOf(p) < 0; });
  var out = document.createElement('pre');
  out.id = 'rf-result';
  out.textContent = JSON.stringify({bad: bad, missing: missing});
  document.documentElement.appendChild(out);
})();
</script>
"""


def _page(body: str, expected: list[str]) -> str:
    data = json.dumps(expected).replace("<", "\\u003c")
    harness = f'<script type="application/json" id="rf-expected">{data}</script>{_HARNESS}'
    if "</body>" in body:
        return body.replace("</body>", harness + "</body>", 1)
    return f"<!DOCTYPE html><html><head><meta charset=utf-8></head><body>{body}{harness}</body></html>"


def _markdown_page(text: str, expected: list[str]) -> str:
    from markdown_it import MarkdownIt

    return _page(MarkdownIt("commonmark", {"html": True}).render(text), expected)


def open_in_browser(tmp_path: Path, name: str, page: str) -> dict[str, Any]:
    """Load ``page`` from a file in headless Chromium; return the DOM's verdict and the DOM."""
    if BROWSER is None:
        reason = "Chromium is not installed (apt-get install chromium); the export pages were not opened"
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason} (REVIEWFLOW_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--virtual-time-budget=3000", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )
    dom = done.stdout
    found = re.search(r'<pre id="rf-result">(.*?)</pre>', dom, re.S)
    assert found, f"the harness did not run (exit {done.returncode}): {done.stderr[-2000:]}"
    import html

    verdict: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    verdict["dom"] = dom
    return verdict


def assert_inert(verdict: dict[str, Any], expected: list[str]) -> None:
    assert "pwned" not in verdict["dom"], re.findall(r'data-m\d+="[^"]*"', verdict["dom"])
    assert verdict["bad"] == []
    assert verdict["missing"] == []
    assert expected  # a page that shows nothing would pass the checks above


def _rows() -> list[ResultRow]:
    rows = []
    for i, payload in enumerate(PAYLOADS):
        rows.append(ResultRow(case_id=f"c{i}", organization=payload, secretary=payload, stage="closed",
                              valid=20, score=Decimal(79), rounded=Decimal("79.00"), grade=payload,
                              rank=i + 1))
    return rows


def _hostile_case(payload: str) -> Case:
    data = {
        "problems": [payload, f"第二个问题 {payload}"],
        "entered": {"research": "2016-01-04T09:00:00+08:00"},
        "meeting": {"date": payload},
        "comments": {"superior_secretary": {"text": payload},
                     "department_delegate": {"text": f"较好 {payload}"}},
        "evaluation": {"rounded": payload},
        "report": {"problems": [{"description": f"报告问题 {payload}", "measure": payload}]},
    }
    return Case("2016", "c1", payload, Actor("zhang", payload), data=data)


def test_the_notice_markdown_runs_nothing_in_a_browser(tmp_path: Path) -> None:
    text = notice_markdown(_rows(), issuer=PAYLOADS[0], date=PAYLOADS[1], contact=PAYLOADS[2])
    verdict = open_in_browser(tmp_path, "notice-md.html", _markdown_page(text, PAYLOADS))
    assert_inert(verdict, PAYLOADS)


def test_the_notice_html_runs_nothing_in_a_browser(tmp_path: Path) -> None:
    page = notice_html(_rows(), issuer=PAYLOADS[0], date=PAYLOADS[1], contact=PAYLOADS[2])
    verdict = open_in_browser(tmp_path, "notice.html", _page(page, PAYLOADS))
    assert_inert(verdict, PAYLOADS)


@pytest.mark.parametrize("index", range(len(PAYLOADS)))
def test_the_special_report_runs_nothing_in_a_browser(tmp_path: Path, index: int) -> None:
    payload = PAYLOADS[index]
    row = ResultRow(case_id="c1", organization=payload, secretary=payload, stage="closed", valid=20,
                    score=Decimal(79), rounded=Decimal("79.00"), grade=payload, rank=1)
    text = "\n\n".join(special_report_skeleton(_hostile_case(payload), r) for r in (None, row))
    verdict = open_in_browser(tmp_path, "report.html", _markdown_page(text, [payload]))
    assert_inert(verdict, [payload])


def test_the_token_sheet_runs_nothing_in_a_browser(tmp_path: Path) -> None:
    from reviewflow.ballots import IssuedToken
    from reviewflow.cli._results import _token_sheet

    ids = [p for p in PAYLOADS if " " not in p]  # case ids hold no spaces; categories may
    tokens = [IssuedToken(token=p, case_id="c1", round=1, category=p) for p in PAYLOADS]
    page = "".join(_token_sheet(case_id, tokens, html_sheet=True) for case_id in ids)
    verdict = open_in_browser(tmp_path, "tokens.html", _page(page, PAYLOADS))
    assert_inert(verdict, PAYLOADS)


def test_the_harness_sees_a_payload_that_runs(tmp_path: Path) -> None:
    """The positive control: the same checks on an unescaped page find every kind of problem."""
    raw = "".join(PAYLOADS[:6]) + PAYLOADS[9]
    verdict = open_in_browser(tmp_path, "raw.html", _markdown_page(raw, []))
    for n in (0, 1, 2, 4, 9):  # an image's onerror, a script, an svg's onload, an iframe, a link
        assert f'data-m{n}="pwned"' in verdict["dom"], n
    kinds = " ".join(verdict["bad"])
    for kind in ("script element", "handler onerror", "url href=javascript:"):
        assert kind in kinds, verdict["bad"]
