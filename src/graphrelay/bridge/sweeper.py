"""The sweeper: finds background calls and runs that a crash left behind, and repairs each.

A process can die between any two steps of the bridge protocol, and a worker's callback can
run out of retries. Each round the sweeper:

- publishes INTENDED calls that nobody published (the API died before or during dispatch;
  a worker drops a second copy of a call it already started, so this is safe);
- fails calls past their deadline with an error the model can read, after revoking them;
- resumes threads whose calls have an outcome that was never applied (the callback was lost,
  or the API died before or during the resume), and marks outcomes nobody waits for APPLIED;
- takes over runs whose lease ran out (their API process died).

A call counts as left behind only once it has stood still for `grace` seconds, so the sweeper
never races a healthy API that is about to take the next step. Every repair is logged and
counted in the `graphrelay_sweeper_repairs_total` metric.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter as MetricCounter

from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.ports import Dispatcher

log = logging.getLogger(__name__)

REPAIRS = MetricCounter(
    "graphrelay_sweeper_repairs_total", "Repairs made by the sweeper, by kind", ["kind"]
)


@dataclass(frozen=True)
class SweepPolicy:
    """How old a stalled call must be before the sweeper acts, and how many per round."""

    grace_seconds: float = 30.0
    batch: int = 500


class Sweeper:
    """One repair round at a time over the ledger, the broker and the run executor."""

    def __init__(
        self,
        ledger: Ledger,
        dispatcher: Dispatcher,
        callback_url: str,
        resume_thread: Callable[[str], Awaitable[None]],
        take_over_runs: Callable[[], Awaitable[list[str]]],
        policy: SweepPolicy | None = None,
    ) -> None:
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.callback_url = callback_url
        self.resume_thread = resume_thread
        self.take_over_runs = take_over_runs
        self.policy = policy or SweepPolicy()

    async def sweep_once(self, now: float | None = None) -> Counter[str]:
        """One round of every repair; how many of each kind were made."""
        now = time.time() if now is None else now
        stalled_since = now - self.policy.grace_seconds
        done: Counter[str] = Counter()
        done["redispatched"] = await self._redispatch(stalled_since)
        done["timed_out"], timed_out_threads = await self._time_out(stalled_since)
        done["resumed"] = await self._resume(stalled_since, timed_out_threads)
        done["runs_taken_over"] = len(await self.take_over_runs())
        for kind, count in done.items():
            REPAIRS.labels(kind).inc(count)
        if done.total():
            log.info("sweep repaired %s", dict(+done))
        return done

    async def _stale(self, status: CallStatus, before: float) -> list[CallRecord]:
        return await asyncio.to_thread(self.ledger.stale, status, before, self.policy.batch)

    async def _redispatch(self, stalled_since: float) -> int:
        records = await self._stale(CallStatus.INTENDED, stalled_since)
        for record in records:
            log.warning("publishing %s (%s): it was never published", record.task_id, record.tool)
            await asyncio.to_thread(self.dispatcher.dispatch, record, self.callback_url)
            await asyncio.to_thread(self.ledger.mark_dispatched, record.task_id)
        return len(records)

    async def _time_out(self, stalled_since: float) -> tuple[int, set[str]]:
        """Fail calls whose deadline passed `grace` seconds ago; the threads they belong to."""
        records = await asyncio.to_thread(self.ledger.overdue, stalled_since, self.policy.batch)
        threads: set[str] = set()
        failed_count = 0
        for record in records:
            await asyncio.to_thread(self.dispatcher.revoke, record.task_id)
            error = _timeout_error(record)
            failed = await asyncio.to_thread(
                self.ledger.finish, record.task_id, CallStatus.FAILED, None, error
            )
            if failed:  # else the worker's outcome came in first, and stands
                log.warning("%s (%s) timed out", record.task_id, record.tool)
                threads.add(record.thread_id)
                failed_count += 1
        return failed_count, threads

    async def _resume(self, stalled_since: float, also: set[str]) -> int:
        """Resume every thread holding an outcome nobody applied; how many threads."""
        threads = set(also)
        for status in (CallStatus.COMPLETED, CallStatus.FAILED):
            threads |= {r.thread_id for r in await self._stale(status, stalled_since)}
        for thread_id in sorted(threads):
            log.warning("resuming thread %s: it holds outcomes nobody applied", thread_id)
            await self.resume_thread(thread_id)
        return len(threads)


def _timeout_error(record: CallRecord) -> str:
    allowed = (record.deadline or record.created_at) - record.created_at
    return (
        f"{record.tool} timed out: it did not finish within its {allowed:.0f} s deadline "
        f"(attempts: {record.attempts}); it was cancelled and will not be retried"
    )
