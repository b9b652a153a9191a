"""Plugins found through the entry-point group ``reviewflow``; only named ones are loaded."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from reviewflow.exceptions import PluginError

__all__ = ["available", "load_named"]

GROUP = "reviewflow"


def available() -> list[str]:
    """Return the names of installed plugins (loaded only when a policy or host names them)."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_named(names: Iterable[str]) -> list[tuple[str, object]]:
    """Load the named plugins; an installed plugin that is not named is never imported."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    out: list[tuple[str, object]] = []
    for name in names:
        ep = found.get(name)
        if ep is None:
            raise PluginError(
                name, "load",
                LookupError(f"plugin {name!r} is named in the policy but not installed; "
                            f"installed: {', '.join(sorted(found)) or 'none'}"),
            )
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(name, "load", exc) from exc
        out.append((name, obj() if isinstance(obj, type) else obj))
    return out
