"""Mainland China's official holiday schedule, read from the ``holidays`` package.

Which years the package knows with their weekend make-up working days (调休), and one
year's days off, worked weekend days and labels; :class:`~reviewflow.calendar.WorkingCalendar`
builds its China calendar from them.
"""

from __future__ import annotations

import datetime as _dt
import re

_CHINA_KNOWN: frozenset[int] | None = None


def china_known_years() -> frozenset[int]:
    """Return the years for which the holidays package has the official schedule (调休)."""
    global _CHINA_KNOWN
    if _CHINA_KNOWN is None:
        import holidays

        probe = holidays.country_holidays("CN", years=2016)
        special = getattr(probe, "special_public_holidays", None) or {}
        _CHINA_KNOWN = frozenset(int(y) for y in special)
    return _CHINA_KNOWN


def china_year(
    year: int, *, with_make_up: bool
) -> tuple[set[_dt.date], set[_dt.date], dict[_dt.date, str]]:
    import holidays

    years = [year - 1, year, year + 1]
    en = holidays.country_holidays("CN", years=years, language="en_US")
    zh = holidays.country_holidays("CN", years=years, language="zh_CN")
    off = {d for d in en if d.year == year}
    names = {d: _holiday_label(en.get(d, ""), zh.get(d, "")) for d in off}
    worked: set[_dt.date] = set()
    if with_make_up:
        worked = {d for d in getattr(en, "weekend_workdays", ()) if d.year == year}
    return off, worked, names


_IN_LIEU = re.compile(r"^day off\b", re.IGNORECASE)


def _holiday_label(en: str, zh: str) -> str:
    """Return a short label such as ``Spring Festival (春节)``; in-lieu days say so."""
    if _IN_LIEU.match(en):
        return "day off in lieu (调休)"
    name = en.replace(" (observed)", "").replace(" (estimated)", "").strip()
    inner = re.search(r"\(([^()]+)\)$", name)
    if inner:
        name = inner.group(1)
    zh_name = re.sub(r"[（(].*?[）)]", "", zh).strip()
    return f"{name} ({zh_name})" if zh_name else name
