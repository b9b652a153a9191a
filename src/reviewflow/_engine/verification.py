"""``Campaign.verify``: every check of the record, streamed case by case.

Each case's chain, replay and ballot boxes (:func:`reviewflow._verify.check_case`), the
campaign's policy against its seal (:func:`reviewflow._policy_seal.verify_policy`), and
the anchors and MACs (:class:`reviewflow.anchoring.Check`), in one pass over the cases
(:func:`reviewflow._sealed.histories`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from reviewflow import anchoring
from reviewflow._engine.vote_work import ballot_box
from reviewflow._policy_seal import verify_policy
from reviewflow._sealed import histories
from reviewflow._verify import check_case
from reviewflow.audit import ChainProblem, VerifyReport

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext

__all__ = ["take_anchor", "verify_campaign"]


def verify_campaign(ctx: StepContext, anchors: Iterable[Any] = ()) -> VerifyReport:
    """Run every check on every case of the campaign; see the module docs. The record must
    also extend every anchor (given, and kept in the store): :mod:`reviewflow.anchoring`."""
    check = anchoring.Check(ctx.store, ctx.campaign_id, ctx.audit_key, anchors)
    box = ballot_box(ctx)
    scoring = ctx.policy.scoring
    problems: list[ChainProblem] = verify_policy(ctx)
    count = events = 0
    for case, case_id, version, last_hash, records in histories(ctx.store, ctx.campaign_id):
        count += 1
        events += len(records)
        problems += check_case(scoring, box, case, case_id, version, last_hash, records)
        check.chain(case_id, records)
    problems += check.finish()
    return VerifyReport(count, events, tuple(problems),
                        anchors=tuple(a.digest for a in check.anchors), notes=tuple(check.notes))


def take_anchor(ctx: StepContext, *, save: bool = True) -> anchoring.Anchor:
    """Make the campaign's anchor now, with a MAC under the audit key (if any), and keep
    it in the store unless ``save`` is false (see :meth:`Campaign.anchor`)."""
    return anchoring.take(ctx.store, ctx.campaign_id, ctx.now()[1], ctx.audit_key, save=save)
