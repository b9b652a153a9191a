"""The lifecycle as a state diagram, annotated with the policy's deadlines and roles.

``mermaid(policy)`` returns mermaid ``stateDiagram-v2`` text (GitHub, GitLab and
most wikis draw it); ``dot(policy)`` returns Graphviz text, and ``svg(policy)``
draws it when Graphviz's ``dot`` program is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from reviewflow.exceptions import InputError
from reviewflow.model import Stage
from reviewflow.policy import EVENTS, Policy

__all__ = ["dot", "edges", "mermaid", "svg"]

_LABELS = {name: label for name, _s, _d, label in EVENTS}


def _stage(name: str) -> Stage:
    try:
        return Stage(name)
    except ValueError:
        return Stage[name]


def edges() -> list[tuple[Stage, str, Stage]]:
    """Return ``(source, event, destination)`` for every edge of the lifecycle, stages as values.

    >>> (Stage.RESEARCH, "finish_research", Stage.DRAFTING) in edges()
    True
    """
    from reviewflow._engine.machine import Lifecycle

    seen: list[tuple[Stage, str, Stage]] = []
    for source, event, dest in Lifecycle().edges():
        edge = (_stage(str(source)), event, _stage(str(dest)))
        if edge not in seen:
            seen.append(edge)
    return seen


def _due_text(policy: Policy, stage: Stage) -> str:
    from reviewflow.deadlines import At, fmt_time

    rule = policy.stage(stage)
    parts = []
    if rule.opens is not None:
        parts.append(f"opens {fmt_time(rule.opens.in_timezone(policy.tz))}")
    if rule.due is not None:
        if isinstance(rule.due, At):
            when = fmt_time(rule.due.at.in_timezone(policy.tz))
        else:
            when = json.dumps(dict(rule.due.to_json()), ensure_ascii=False, default=str)
        parts.append(f"due {when} ({'hard' if rule.hard else 'soft'})")
    return ", ".join(parts)


def _roles(policy: Policy, event: str) -> str:
    return ", ".join(sorted(policy.permissions.get(event, ())))


def _safe(text: str) -> str:
    """Text for a mermaid label: no quote, line break or statement end, and no HTML (mermaid
    draws labels as HTML; ``#`` starts its entity codes, so it is one too)."""
    text = text.replace('"', "'").replace("\n", " ").replace(";", ",")
    return (text.replace("#", "#35;").replace("&", "#amp;").replace("<", "#lt;")
            .replace(">", "#gt;"))


def mermaid(policy: Policy | None = None) -> str:
    """Return the lifecycle as mermaid ``stateDiagram-v2`` text, with deadlines and roles.

    >>> print(mermaid().splitlines()[0])
    stateDiagram-v2
    """
    policy = policy or Policy.default(year=2016)
    lines = ["stateDiagram-v2"]
    for stage in Stage:
        text = _safe(f"{stage.label} {stage.value}")
        due = _due_text(policy, stage)
        if due:
            text += f"<br/>{_safe(due)}"
        lines.append(f'    state "{text}" as {stage.value}')
    lines.append(f"    [*] --> {Stage.RESEARCH.value}")
    for source, event, dest in edges():
        roles = _roles(policy, event)
        label = f"{event} {_LABELS.get(event, '')}" + (f" [{roles}]" if roles else "")
        lines.append(f"    {source.value} --> {dest.value} : {_safe(label)}")
    lines.append(f"    {Stage.CLOSED.value} --> [*]")
    return "\n".join(lines) + "\n"


def dot(policy: Policy | None = None) -> str:
    """Return the lifecycle as Graphviz DOT text, with deadlines and roles."""
    policy = policy or Policy.default(year=2016)

    def q(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)

    lines = ["digraph reviewflow {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="sans"];']
    for stage in Stage:
        due = _due_text(policy, stage)
        text = q(f"{stage.label}\n{stage.value}" + (f"\n{due}" if due else ""))
        lines.append(f"  {stage.value} [label={text}];")
    for source, event, dest in edges():
        roles = _roles(policy, event)
        label = q(event + (f" [{roles}]" if roles else ""))
        lines.append(f"  {source.value} -> {dest.value} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(policy: Policy | None = None, *, dot_program: Any = None) -> str:
    """Return the lifecycle drawn as SVG by Graphviz; :class:`InputError` if ``dot`` is missing."""
    program = dot_program or shutil.which("dot")
    if not program:
        raise InputError("SVG needs Graphviz's dot program, which is not installed; install "
                         "graphviz (apt install graphviz) or use --format mermaid")
    done = subprocess.run(  # noqa: S603  # a fixed program and our own DOT text
        [str(program), "-Tsvg"], input=dot(policy).encode(), capture_output=True, timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise InputError(f"Graphviz failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode()
