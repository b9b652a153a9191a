"""Scores: the seed's satisfaction formula and the policy settings for it.

(Provisional: the evaluations work replaces this module with configurable scales,
channels, bands, quotas and explanations, keeping these names.)
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs

from reviewflow.exceptions import ScoringError

__all__ = ["ScoringPolicy", "satisfaction_score"]

_SEED_POINTS = {"good": 100, "fairly_good": 80, "average": 60, "poor": 0}
_LABELS = {"好": "good", "较好": "fairly_good", "一般": "average", "差": "poor"}


@attrs.frozen(kw_only=True)
class ScoringPolicy:
    """How votes become scores."""

    places: int = 2

    def to_json(self) -> dict[str, Any]:
        """Return the settings as plain data."""
        return {"places": self.places}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], field: str = "scoring") -> ScoringPolicy:
        """Build the settings from policy-file data; raise PolicyError naming the field."""
        from reviewflow.exceptions import PolicyError

        places = data.get("places", 2)
        if not isinstance(places, int) or not 0 <= places <= 6:
            raise PolicyError("places must be a whole number from 0 to 6", field=f"{field}.places")
        return cls(places=places)


def satisfaction_score(counts: Mapping[str, int], scale: Any = None) -> Decimal:
    """Return (好×100 + 较好×80 + 一般×60 + 差×0) ÷ valid ballots, exact.

    >>> satisfaction_score({"good": 10, "fairly_good": 5, "average": 3, "poor": 2})
    Decimal('79')
    """
    total = 0
    points = 0
    for key, n in counts.items():
        option = _LABELS.get(key, key)
        if option not in _SEED_POINTS:
            raise ScoringError(f"unknown option {key!r}; options are {', '.join(_SEED_POINTS)}")
        if not isinstance(n, int) or n < 0:
            raise ScoringError(f"count for {key!r} must be a non-negative integer, got {n!r}")
        total += n
        points += _SEED_POINTS[option] * n
    if total == 0:
        raise ScoringError("no valid ballots: a score needs at least one")
    return Decimal(points) / Decimal(total)


def present(value: Decimal, places: int = 2) -> Decimal:
    """Round once, for presentation: half-up to ``places``."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
