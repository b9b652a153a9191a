"""A store of the host's own must offer every part a reviewflow store offers, and is told which
it lacks when it does not (a clear InputError at construction, not an AttributeError later)."""

from __future__ import annotations

import pytest

from reviewflow import Campaign, Policy
from reviewflow.exceptions import InputError
from reviewflow.store import MemoryStore, open_store


class _OldStyleStore:
    """The fifteen methods a store needed before it owned its parts (no deadline index,
    ballot box, delivery log, campaign chain or anchors)."""

    durable = False

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> object:
        if name in {"setup_campaign", "campaign_policy", "campaigns", "insert_cases", "get",
                    "get_many", "cases", "history", "commit", "find_idempotent",
                    "record_refusals", "refusals", "pending_outbox", "mark_dispatched",
                    "close"}:
            return getattr(self._inner, name)
        raise AttributeError(name)


def test_a_host_store_without_the_parts_is_refused_naming_them() -> None:
    with pytest.raises(InputError) as caught:
        Campaign(Policy.default(year=2026), store=_OldStyleStore())  # type: ignore[arg-type]
    message = str(caught.value)
    assert caught.value.reason == "invalid_argument"
    for part in ("ballot_box", "delivery_log", "deadline_due", "campaign_events"):
        assert part in message
    assert "setup_campaign" not in message


def test_something_that_is_no_store_at_all_is_refused() -> None:
    with pytest.raises(InputError, match="store must be a Store"):
        open_store(42)  # type: ignore[arg-type]


def test_a_complete_store_is_taken_as_it_is() -> None:
    store = MemoryStore()
    assert open_store(store) is store
    assert Campaign(Policy.default(year=2026), store=store).store is store
