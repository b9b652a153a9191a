"""The campaign's policy, sealed on the campaign's own chain; every amendment an event.

A score is computed under a policy (the scale's points, the bands, the rounding): a
different policy file re-grades the same votes. So the policy a campaign runs under is
part of its record:

* the campaign's own chain (the store's ``campaign_events``) starts with a
  ``seal_policy`` record holding the SHA-256 digest of the policy's canonical JSON, made
  when the campaign is set up. A campaign set up before there was a chain (an older
  database) is sealed, with the policy it was set up with, the first time it is opened;
* every change of policy is an ``amend_policy`` record on that chain, with a reason and
  who made it, the new digest and the settings that changed
  (:meth:`Campaign.amend_policy`, ``reviewflow policy amend FILE --reason ...``);
* opening a campaign with another policy than the sealed one is refused with
  :class:`~reviewflow.exceptions.PolicyMismatch` (reason ``policy_differs``), naming the
  settings that differ and how to amend; nothing is changed.

``verify`` checks the chain, that the stored policy is the sealed one, and that the
campaign's policy is too (:func:`verify_policy`).

The records are :class:`~reviewflow.model.EventRecord` with an empty case id, sealed the
same way as a case's.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from reviewflow.audit import _MISSING, ChainProblem, _diff, verify_chain
from reviewflow.exceptions import InputError, PolicyMismatch, ReviewflowError
from reviewflow.model import GENESIS_HASH, Actor, EventRecord

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext
    from reviewflow.policy import Policy

__all__ = ["AMEND_EVENT", "SEAL_EVENT", "amend", "check_on_open", "differing_fields",
           "policy_digest", "unchecked", "verify_policy"]

SEAL_EVENT = "seal_policy"
AMEND_EVENT = "amend_policy"
_SYSTEM = Actor("reviewflow", "reviewflow", roles={"system"})
_CHECK: contextvars.ContextVar[bool] = contextvars.ContextVar("reviewflow_policy_check",
                                                              default=True)


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Open campaigns without refusing a policy other than the sealed one (for ``verify``,
    which reports it instead)."""
    token = _CHECK.set(False)
    try:
        yield
    finally:
        _CHECK.reset(token)


def _canonical(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def policy_digest(policy_json: str) -> str:
    """Return the SHA-256 digest of a policy's canonical JSON (keys sorted, no spaces)."""
    return hashlib.sha256(_canonical(policy_json).encode()).hexdigest()


def differing_fields(old_json: str | None, new_json: str) -> list[tuple[str, Any, Any]]:
    """Return (dotted setting, old value, new value) for each setting two policies differ in."""
    out: list[tuple[str, Any, Any]] = []
    old = json.loads(old_json) if old_json else {}
    _diff("", old, json.loads(new_json), out)
    return [(path.lstrip("."), a, b) for path, a, b in out]


def _chain(c: StepContext) -> list[EventRecord]:
    return c.store.campaign_events(c.campaign_id)


def _make(c: StepContext, seq: int, event: str, actor: Actor, role: str, reason: str | None,
          data: dict[str, Any], prev: str) -> EventRecord:
    from reviewflow._chain import seal

    _now, iso = c.now()
    return seal(c.campaign_id, "", seq, event, actor.id, role, iso, None, "", reason, data, prev)


def _sealed_digest(records: Sequence[EventRecord]) -> str | None:
    return str(records[-1].data.get("digest")) if records else None


def _describe(fields: Sequence[tuple[str, Any, Any]], limit: int = 8) -> str:
    shown = [f"{path or '(the whole policy)'}: {_short(a)} -> {_short(b)}"
             for path, a, b in fields[:limit]]
    more = f"; and {len(fields) - limit} more" if len(fields) > limit else ""
    return "; ".join(shown) + more


def _short(value: Any) -> str:
    text = "(absent)" if value is _MISSING else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def check_on_open(c: StepContext) -> None:
    """Seal the campaign's policy if it has no seal yet; refuse another policy than the sealed.

    Called by ``Campaign(...)`` after the store set the campaign up.
    """
    records = _chain(c)
    mine = c.policy.to_json()
    stored = c.store.campaign_policy(c.campaign_id)
    sealed: str | None
    if not records:
        # New, or set up before the chain existed: seal the policy it was set up with.
        text = stored if stored is not None else mine
        sealed = policy_digest(text)
        try:
            record = _make(c, 1, SEAL_EVENT, _SYSTEM, "system", None, {"digest": sealed},
                           GENESIS_HASH)
        except ReviewflowError:
            record = None  # the clock cannot tell the time (its steps will say so): the
            # seal is written by the next open; the policy is checked against `text` now
        if record is not None:
            # sealed by another process meanwhile: read its seal
            with contextlib.suppress(ReviewflowError):
                c.store.append_campaign_event(record, None)
            records = _chain(c)
            sealed = _sealed_digest(records)
    else:
        sealed = _sealed_digest(records)
    if sealed is None or policy_digest(mine) == sealed or not _CHECK.get():
        return
    fields = differing_fields(stored, mine)
    paths = tuple(path for path, _a, _b in fields)
    where = f"campaign {c.campaign_id!r}"
    if stored is None or policy_digest(stored) != sealed:
        raise PolicyMismatch(
            f"{where}: this policy is not the one sealed on the campaign's record, and the "
            "policy kept in the database is not either (it was edited): run `reviewflow "
            "verify`; nothing was changed [policy_differs]", fields=paths)
    raise PolicyMismatch(
        f"{where} runs under its sealed policy (digest {sealed[:12]}...); the policy given "
        f"differs in {len(fields)} setting(s): {_describe(fields)}. Nothing was changed. Use "
        "the campaign's own policy (in the CLI: leave out --policy), or record the change as "
        "an amendment with a reason: campaign.amend_policy(policy, reason=..., actor=...) / "
        "`reviewflow policy amend FILE --reason ... --actor ...` "
        "(该考核的评议政策已封存；如需修改，请以修订记录并说明理由) [policy_differs]",
        fields=paths)


def amend(c: StepContext, policy: Policy, *, reason: str, actor: Actor) -> EventRecord:
    """Record ``policy`` as an amendment of the campaign's policy (``amend_policy``), with
    the reason, who, the new and previous digests and the settings that changed; keep it
    as the campaign's policy. Returns the record."""
    from reviewflow.policy import Policy as _Policy

    if not isinstance(policy, _Policy):
        raise InputError(f"amend_policy needs a reviewflow.Policy, got {type(policy).__name__}")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("amending the campaign's policy needs a reason (修订理由): reason='...'")
    if not isinstance(actor, Actor):
        raise InputError(f"actor must be a reviewflow.Actor, got {type(actor).__name__}")
    permitted = c.policy.permissions.get(AMEND_EVENT, frozenset({"organizer"}))
    held = actor.roles & permitted
    if not held:
        raise InputError(f"{actor.id} may not amend the campaign's policy: it needs the role "
                         f"{', '.join(sorted(permitted))}")
    records = _chain(c)
    old = c.store.campaign_policy(c.campaign_id)
    new = policy.to_json()
    fields = differing_fields(old, new)
    if not fields:
        raise InputError("the policy given is the campaign's policy already: nothing to amend")
    prev = records[-1].hash if records else GENESIS_HASH
    record = _make(c, len(records) + 1, AMEND_EVENT, actor, min(held), reason,
                   {"digest": policy_digest(new), "previous": _sealed_digest(records),
                    "fields": [path for path, _a, _b in fields][:200]}, prev)
    c.store.append_campaign_event(record, new)
    return record


def verify_policy(c: StepContext) -> list[ChainProblem]:
    """Check the campaign's chain, and that the stored and the campaign's policies are the
    sealed one; return the problems (case id empty: the campaign)."""
    records = _chain(c)
    if not records:
        return [ChainProblem("", 0, "the campaign's policy is not sealed on any record",
                             field="policy", kind="policy")]
    found = verify_chain("", records)
    if found:
        return [ChainProblem("", p.position, f"the campaign's chain: {p.message}",
                             field="policy", kind="policy") for p in found]
    sealed = _sealed_digest(records)
    problems = []
    stored = c.store.campaign_policy(c.campaign_id)
    if stored is None or policy_digest(stored) != sealed:
        problems.append(ChainProblem(
            "", len(records),
            f"the policy kept in the database (digest "
            f"{'none' if stored is None else policy_digest(stored)[:12]}) is not the one "
            f"event {len(records)} ({records[-1].event}) sealed ({str(sealed)[:12]}): it was "
            "edited", field="policy", expected=sealed,
            found=None if stored is None else policy_digest(stored), kind="policy"))
    mine = policy_digest(c.policy.to_json())
    if mine != sealed:
        problems.append(ChainProblem(
            "", len(records),
            f"this campaign runs under a policy (digest {mine[:12]}) other than the sealed "
            f"one ({str(sealed)[:12]})", field="policy.in_use", expected=sealed, found=mine,
            kind="policy"))
    return problems
