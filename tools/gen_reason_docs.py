"""Write the table of every reason code into docs/reference/errors.md, from the registry.

Run after adding a code to ``reviewflow._reasons.Reason``: ``.venv/bin/python tools/gen_reason_docs.py``.
tests/test_reason_codes.py checks that the page's table is what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reviewflow.exceptions import Reason

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "errors.md"
BEGIN = "<!-- reason codes: written by tools/gen_reason_docs.py from reviewflow.exceptions.Reason -->"
END = "<!-- end of reason codes -->"


def table() -> str:
    """The Markdown table of the codes, in the registry's order."""
    rows = ["| reason | exit | meaning | 含义 |", "|---|---|---|---|"]
    rows += [f"| `{r}` | {r.exit_code or '-'} | {r.en} | {r.zh} |" for r in Reason]
    return "\n".join([BEGIN, *rows, END])


def page_with_table(text: str) -> str:
    """The page's text with its table of codes replaced by the registry's."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + table() + tail


def main() -> int:
    text = PAGE.read_text(encoding="utf-8")
    PAGE.write_text(page_with_table(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
