"""Text from users put into Markdown so that it reads as the same text and nothing else.

Every Markdown export (the 公示 notice, the special report) puts names, comments,
problems and dates through :func:`md_text`. The output is meant to stay inert when
rendered as CommonMark *with raw HTML allowed* (what most wikis and Markdown viewers do):

* every character that can open an inline construct or raw HTML is backslash-escaped:
  ``\\ ` * _ [ ] ( ) { } < > # ! | ~ &`` (``&`` too, so that ``&lt;`` shows as typed);
* a value that starts with a block marker (``-``, ``+``, ``=``, ``>``, ``1.``, ``1)``)
  gets that marker escaped, since a list item's text is parsed as blocks again;
* line breaks and runs of spaces become one space, so a value never starts a line of
  its own (no heading, code block or HTML block can begin inside it).

>>> md_text("<img src=x onerror=alert(1)>")
'\\\\<img src=x onerror=alert\\\\(1\\\\)\\\\>'
>>> md_text("[x](javascript:alert(1))")
'\\\\[x\\\\]\\\\(javascript:alert\\\\(1\\\\)\\\\)'
>>> md_text("1. 组织生活\\n- 不规范")
'1\\\\. 组织生活 - 不规范'
"""

from __future__ import annotations

import re

__all__ = ["md_text"]

_SPECIAL = re.compile(r"([\\`*_\[\](){}<>#!|~&])")
_BLOCK_START = re.compile(r"^(\d{1,9})([.)])|^([-+=>])")


def md_text(value: object) -> str:
    """Return ``value`` as Markdown inline text that renders as exactly this text."""
    text = " ".join(("" if value is None else str(value)).split())
    text = _SPECIAL.sub(r"\\\1", text)
    return _BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}",
                            text, count=1)
