"""The checks every policy-file reader makes: types of values, known keys, errors with lines."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pendulum

from reviewflow import deadlines
from reviewflow._policy_io.lines import LineIndex
from reviewflow._policy_io.values import kind, suggest
from reviewflow.clock import DEFAULT_TZ
from reviewflow.exceptions import PolicyError

_T = TypeVar("_T")


class Checker:
    """Checks parsed data, raising PolicyError with the file, the field and its line."""

    def __init__(self, source: str | None, text: str | None) -> None:
        self.source = source
        self.text = text
        self._index: LineIndex | None = None
        self.tz = DEFAULT_TZ

    # -- errors

    def line_of(self, field: str | None) -> int | None:
        if self.text is None or not field:
            return None
        if self._index is None:
            self._index = LineIndex(self.text)
        return self._index.line_of(field)

    def error(self, message: str, field: str | None) -> PolicyError:
        return PolicyError(message, field=field, source=self.source, line=self.line_of(field))

    def rewrap(self, exc: PolicyError) -> PolicyError:
        """Add the file and line to an error raised by a delegate or by Policy's checks."""
        if exc.source is not None:
            return exc
        message = str(exc)
        if exc.field and message.startswith(f"{exc.field}: "):
            message = message[len(exc.field) + 2:]
        return PolicyError(message, field=exc.field, source=self.source,
                           line=self.line_of(exc.field))

    def call(self, field: str, what: str, fn: Callable[[], _T]) -> _T:
        """Run a delegate reader; turn whatever it raises into a PolicyError naming ``field``."""
        try:
            return fn()
        except PolicyError as exc:
            raise self.rewrap(exc) from exc
        except RecursionError:
            raise self.error(f"{what} is nested too deeply", field) from None
        except Exception as exc:
            raise PolicyError(
                f"cannot read {what}: {exc}; see docs/reference/policy-file.md for its form",
                field=field, source=self.source, line=self.line_of(field),
            ) from exc

    # -- type checks

    def table(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"must be a table (e.g. [{field}]), not {kind(value)}", field)
        return value

    def keys(self, data: Mapping[str, Any], known: Iterable[str], field: str | None,
             *, also: Iterable[str] = ()) -> None:
        """Refuse keys not in ``known`` (``also``: accepted, but not offered in messages)."""
        known = tuple(known)
        accepted = set(known) | set(also)
        for key in data:
            if key not in accepted:
                where = f"{field}.{key}" if field else key
                raise self.error(
                    f"unknown setting {key!r}{suggest(key, known)}; "
                    f"settings here are: {', '.join(known)}", where
                )

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.error(f"must be a string in double quotes, not {kind(value)}", field)
        return value

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"must be true or false, not {kind(value)}", field)
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"must be a whole number, not {kind(value)}", field)
        return value

    def strings(self, value: Any, field: str) -> list[str]:
        if not isinstance(value, list):
            raise self.error(
                f'must be a list of strings, e.g. ["a", "b"], not {kind(value)}', field
            )
        for i, item in enumerate(value):
            self.string(item, f"{field}[{i}]")
        return value

    def roles(self, value: Any, field: str, roles: Mapping[str, str]) -> frozenset[str]:
        names = self.strings(value, field)
        for i, role in enumerate(names):
            if role not in roles:
                raise self.error(
                    f"unknown role {role!r}{suggest(role, roles)}; declare it under "
                    f"[roles] or use one of: {', '.join(roles)}", f"{field}[{i}]"
                )
        return frozenset(names)

    def datetime(self, value: Any, field: str, *, dates: bool = False) -> pendulum.DateTime:
        """Read a date-time (TOML, or an ISO string as JSON has it); a local one (no offset)
        is in the policy's time zone."""
        if isinstance(value, str):
            try:
                value = (_dt.date.fromisoformat(value) if dates and len(value) == 10
                         else _dt.datetime.fromisoformat(value))
            except ValueError:
                raise self.error(
                    f"{value!r} is not a date-time; write e.g. 2017-01-11T00:00:00+08:00 "
                    "(without quotes)", field
                ) from None
        if isinstance(value, _dt.date) and value.year not in deadlines.YEARS:
            raise self.error(
                f"{value.isoformat()} is out of range: a policy's dates fall in the years "
                f"{deadlines.YEARS.start} to {deadlines.YEARS.stop - 1}", field)
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                return pendulum.instance(value, tz=self.tz)
            return pendulum.instance(value).in_timezone(self.tz)
        if dates and isinstance(value, _dt.date):
            return pendulum.datetime(value.year, value.month, value.day, tz=self.tz)
        raise self.error(
            f"must be a date-time such as 2017-01-11T00:00:00+08:00, not {kind(value)}",
            field
        )
