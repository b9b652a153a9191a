"""Number helpers for scores and policy data, and the presentation rounding rule."""

from __future__ import annotations

import decimal
import functools
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from reviewflow.exceptions import PolicyError, ScoringError

Number = int | Decimal | Fraction | str

_MODES = ("half_up", "half_even", "half_down", "down", "up")
_MODE_TEXT = {
    "half_up": "half-up", "half_even": "half-even", "half_down": "half-down",
    "down": "towards zero", "up": "away from zero",
}


# --------------------------------------------------------------------------- numbers


def _to_decimal(value: Any, what: str, error: type[Exception] = ScoringError) -> Decimal:
    """Convert an int, Decimal, Fraction-free string (or, in policy files only, a float)."""
    if isinstance(value, bool):
        raise error(f"{what} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, int):
        out = Decimal(value)
    elif isinstance(value, str):
        try:
            out = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise error(f"{what} must be a number, got {value!r}") from None
    elif isinstance(value, float) and error is PolicyError:
        out = Decimal(repr(value))  # a TOML literal such as 92.5, taken as written
    else:
        raise error(f"{what} must be an int, a Decimal or a numeric string, got {value!r}")
    if not out.is_finite():
        raise error(f"{what} must be a finite number, got {value!r}")
    return out


def _to_fraction(value: Any, field: str | None) -> Fraction:
    """Read a share from policy data: a fraction string like '2/3', a decimal, or an int."""
    if isinstance(value, Fraction):
        return value
    message = f"must be a fraction like '2/3' or a decimal like 0.5, got {value!r}"
    if isinstance(value, str) and "/" in value:
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise PolicyError(message, field=field) from None
    try:
        return Fraction(_to_decimal(value, "a share", PolicyError))
    except PolicyError:
        raise PolicyError(message, field=field) from None


def _policy_number(value: Any) -> Decimal:
    """Convert a number from policy data (points, weights, band minimums) to Decimal."""
    return _to_decimal(value, "a policy number", PolicyError)


def _share(value: Any) -> Fraction | None:
    """Convert an optional share given as a Fraction, '2/3', a Decimal or an int."""
    return None if value is None else _to_fraction(value, None)


def _decimal(f: Fraction) -> Decimal:
    """Return a Fraction as a Decimal: exact when it terminates, else to 28 digits."""
    with decimal.localcontext() as ctx:
        ctx.prec = 28
        ctx.rounding = decimal.ROUND_HALF_EVEN
        return Decimal(f.numerator) / Decimal(f.denominator)


def _num(value: Decimal) -> int | str:
    """Return a policy number for plain data: an int when whole, else its exact text."""
    return int(value) if value == value.to_integral_value() else _fmt(value)


def _fmt(value: Decimal | Fraction | int) -> str:
    """Format a number for explanations without exponent notation."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        value = _decimal(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


@attrs.frozen(kw_only=True)
class Rounding:
    """How a score is rounded for presentation: ``places`` decimals, by ``mode``.

    Modes: ``half_up`` (the default, 四舍五入), ``half_even``, ``half_down``, ``down``, ``up``.
    Rounding is computed from the exact fraction, so a value never rounds twice.
    """

    places: int = 2
    mode: str = "half_up"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.places, int) or isinstance(self.places, bool) \
                or not 0 <= self.places <= 6:
            raise PolicyError("places must be a whole number from 0 to 6", field="scoring.places")
        if self.mode not in _MODES:
            raise PolicyError(
                f"unknown rounding mode {self.mode!r}; use one of {', '.join(_MODES)}",
                field="scoring.rounding",
            )

    def scaled(self, numerator: int, denominator: int) -> int:
        """Return the rounded value times 10**places, as an int (denominator > 0)."""
        sign = -1 if numerator < 0 else 1
        q, r = divmod(abs(numerator) * 10**self.places, denominator)
        mode = self.mode
        if r:
            if mode == "up":
                q += 1
            elif mode == "half_up":
                q += 2 * r >= denominator
            elif mode == "half_down":
                q += 2 * r > denominator
            elif mode == "half_even":
                q += 2 * r > denominator or (2 * r == denominator and q % 2 == 1)
        return int(sign * q)

    def apply(self, value: Fraction | Decimal | int) -> Decimal:
        """Return ``value`` rounded by this rule, as a Decimal with ``places`` decimals."""
        f = Fraction(value)
        return Decimal(self.scaled(f.numerator, f.denominator)).scaleb(-self.places)

    def describe(self) -> str:
        """Say the rule in words: ``2 places, half-up``."""
        return f"{self.places} places, {_MODE_TEXT[self.mode]}"


@functools.lru_cache(maxsize=64)
def _rounding(places: int, mode: str) -> Rounding:
    return Rounding(places=places, mode=mode)
