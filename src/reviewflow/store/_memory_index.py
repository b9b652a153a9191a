"""The in-memory store's deadline index: case ids by next fire time and by due time.

Fed by the :class:`~reviewflow.store.rows.RungSchedule` rows of the store's own commits;
the store answers :class:`~reviewflow.store.parts.DeadlineIndex` from it.
"""

from __future__ import annotations

import heapq
import threading

from reviewflow.store.rows import RungSchedule


class _TimeIndex:
    """Case ids by a time (microseconds): a bucket of ids per distinct time, and a heap of
    the distinct times. Most cases share a few times (a fixed due date, the same ladder),
    so keeping an entry current is usually a dict update; a new distinct time is a heap
    push (no list shifting however many times there are), and a time whose bucket emptied
    stays on the heap until a query or a compaction drops it."""

    __slots__ = ("buckets", "cur", "times")

    def __init__(self) -> None:
        self.cur: dict[str, int] = {}
        self.buckets: dict[int, dict[str, None]] = {}
        self.times: list[int] = []

    def set(self, case_id: str, value: int | None) -> None:
        old = self.cur.get(case_id)
        if old == value:
            return
        if old is not None:
            was = self.buckets[old]
            del was[case_id]
            if not was:
                del self.buckets[old]
        if value is None:
            del self.cur[case_id]
            return
        self.cur[case_id] = value
        bucket = self.buckets.get(value)
        if bucket is None:
            bucket = self.buckets[value] = {}
            heapq.heappush(self.times, value)
            if len(self.times) > 2 * len(self.buckets) + 1024:  # drop times no bucket holds
                self.times[:] = list(self.buckets)
                heapq.heapify(self.times)
        bucket[case_id] = None

    def upto(self, bound: int, limit: int | None) -> list[str]:
        """Return the ids whose time is <= bound, by time, then id; at most ``limit``.

        The heap's nodes at or below ``bound`` form a subtree at its root: the walk visits
        only them and their children, so the cost follows the answer, not the index's size.
        """
        times, buckets = self.times, self.buckets
        while times and times[0] not in buckets:  # times whose bucket emptied
            heapq.heappop(times)
        due: list[int] = []
        n = len(times)
        stack = [0] if n else []
        while stack:
            i = stack.pop()
            if times[i] > bound:
                continue
            if times[i] in buckets:
                due.append(times[i])
            left = 2 * i + 1
            if left < n:
                stack.append(left)
                if left + 1 < n:
                    stack.append(left + 1)
        out: list[str] = []
        for time in sorted(set(due)):
            for case_id in sorted(buckets[time]):
                out.append(case_id)
                if limit is not None and len(out) >= limit:
                    return out
        return out


class _CampaignIndex:
    """Next fire times and due times of one campaign's cases."""

    __slots__ = ("due", "fire")

    def __init__(self) -> None:
        self.fire = _TimeIndex()
        self.due = _TimeIndex()

    def put(self, case_id: str, due_us: int | None, next_us: int | None) -> None:
        self.fire.set(case_id, next_us)
        self.due.set(case_id, due_us)


class MemoryIndex:
    """The deadline index of one :class:`~reviewflow.store.memory.MemoryStore`."""

    __slots__ = ("campaigns", "lock")

    def __init__(self) -> None:
        self.campaigns: dict[str, _CampaignIndex] = {}
        self.lock = threading.Lock()

    def apply(self, row: RungSchedule) -> None:
        """Keep the case's entry as the row gives it (a row with both times None drops it)."""
        with self.lock:
            index = self.campaigns.get(row.campaign_id)
            if index is None:
                index = self.campaigns[row.campaign_id] = _CampaignIndex()
            index.fire.set(row.case_id, row.next_fire_us)  # as put(), one call fewer
            index.due.set(row.case_id, row.due_us)

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        with self.lock:
            index = self.campaigns.get(campaign_id)
            if index is None:
                return []
            return index.fire.upto(until_us, limit)

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        with self.lock:
            index = self.campaigns.get(campaign_id)
            if index is None:
                return []
            return index.due.upto(at_us - 1, limit)

