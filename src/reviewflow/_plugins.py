"""Plugins found through the entry-point group ``reviewflow``; only named ones are loaded."""

from __future__ import annotations

import types
from collections.abc import Iterable
from importlib.metadata import entry_points

import pluggy

from reviewflow.exceptions import PluginError

__all__ = ["available", "check_plugin", "load_named"]

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


#: The longest plugin name the delivery log keeps.
_LONGEST_NAME = 200


def check_plugin(pm: pluggy.PluginManager, plugin: object, name: str | None) -> str:
    """Return the name to register ``plugin`` under; refuse wrappers and unusable names.

    A plugin without a name gets its class's dotted name (a module: its own name), with
    ``#2``, ``#3`` for more of the same, so that it is known by the same name after a
    restart (the delivery log refers to plugins by name).
    """
    label = name or repr(plugin)
    if name is not None and (not isinstance(name, str) or not name.strip()
                             or len(name) > _LONGEST_NAME):
        raise PluginError(label, "register", ValueError(
            f"a plugin name must be a non-empty string of at most {_LONGEST_NAME} "
            f"characters, got {name!r}"))
    wrappers = []
    for attr in dir(plugin):
        try:
            opts = pm.parse_hookimpl_opts(plugin, attr)
        except Exception:  # noqa: S112  # pluggy's own register reports what it cannot read
            continue
        if opts and (opts.get("wrapper") or opts.get("hookwrapper")):
            wrappers.append(attr)
    if wrappers:
        raise PluginError(label, "register", TypeError(
            f"{', '.join(sorted(wrappers))}: hook wrappers (wrapper=True, hookwrapper=True) "
            "are not supported: reviewflow calls each implementation on its own, so that "
            "one that fails is retried alone and the others are not told twice; a wrapper "
            "would not run around them. Implement the hook itself (tryfirst/trylast to "
            "order it) instead"))
    if name is not None:
        return name
    if isinstance(plugin, types.ModuleType):
        base = plugin.__name__
    elif isinstance(plugin, type):
        base = f"{plugin.__module__}.{plugin.__qualname__}"
    else:
        base = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    base = base[:_LONGEST_NAME - 8]
    taken = {n for n, _ in pm.list_name_plugin()}
    found, n = base, 1
    while found in taken:
        n += 1
        found = f"{base}#{n}"
    return found
