"""The docs keep up with the code: the API page names every public name."""

from __future__ import annotations

from pathlib import Path

import reviewflow as rf

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_api_page_names_every_exported_name_and_campaign_method() -> None:
    page = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    methods = [m for m in vars(rf.Campaign) if not m.startswith("_") and callable(getattr(rf.Campaign, m))]
    missing = [n for n in [*rf.__all__, *methods] if f"`{n}" not in page]
    assert missing == [], "run tools/gen_api_docs.py"


def test_index_links_to_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if p.name != "index.md")
    missing = [p for p in pages if f"({p})" not in index]
    assert missing == []
