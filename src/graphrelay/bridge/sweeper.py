"""The sweeper: finds background calls and runs that a crash left behind, and repairs each.

A process can die between any two steps of the bridge protocol, and a worker's callback can
run out of retries. Each round the sweeper:

- publishes INTENDED calls that nobody published (the API died before or during dispatch;
  a worker drops a second copy of a call it already started, so this is safe);
- fails calls past their deadline with an error the model can read, after revoking them;
- resumes threads whose calls have an outcome that was never applied (the callback was lost,
  or the API died before or during the resume), and marks outcomes nobody waits for APPLIED;
- takes over runs whose lease ran out (their API process died);
- forgets index entries of what the thread TTL removed.

A call counts as left behind only once it has stood still for `grace` seconds, so the sweeper
never races a healthy API that is about to take the next step.

No single record can hold the sweeper: a call whose thread no longer exists is settled (closed
ABANDONED with the reason, revoked, forgotten), not repaired; a repair that raises or leaves
its record where it was is counted on the record, which that write moves behind every record
not tried yet (each round takes the oldest first, so a batch goes round all of them); and after
`max_repairs` such rounds the record is parked ABANDONED with the reason, logged, counted, and
listed by `Ledger.abandoned`. Every repair is logged and counted in the
`graphrelay_sweeper_repairs_total` metric.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter as MetricCounter

from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger, settle_thread
from graphrelay.bridge.ports import Dispatcher

log = logging.getLogger(__name__)

REPAIRS = MetricCounter(
    "graphrelay_sweeper_repairs_total", "Repairs made by the sweeper, by kind", ["kind"]
)
GONE_REASON = "its thread no longer exists (deleted or expired)"


@dataclass(frozen=True)
class SweepPolicy:
    """How old a stalled call must be before the sweeper acts, how many per round, and how
    many failed repairs park a call."""

    grace_seconds: float = 30.0
    batch: int = 500
    max_repairs: int = 5


class Sweeper:
    """One repair round at a time over the ledger, the broker and the run executor.

    `thread_exists` tells whether a thread still exists (without it, every thread does);
    `forget_expired` drops what the thread TTL left in other stores' shared indexes.
    """

    def __init__(
        self,
        ledger: Ledger,
        dispatcher: Dispatcher,
        callback_url: str,
        resume_thread: Callable[[str], Awaitable[None]],
        take_over_runs: Callable[[], Awaitable[list[str]]],
        policy: SweepPolicy | None = None,
        *,
        thread_exists: Callable[[str], Awaitable[bool]] | None = None,
        forget_expired: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.callback_url = callback_url
        self.resume_thread = resume_thread
        self.take_over_runs = take_over_runs
        self.policy = policy or SweepPolicy()
        self.thread_exists = thread_exists
        self.forget_expired = forget_expired

    async def sweep_once(self, now: float | None = None) -> Counter[str]:
        """One round of every repair; how many of each kind were made."""
        now = time.time() if now is None else now
        stalled_since = now - self.policy.grace_seconds
        round_ = _Round()
        done = round_.done
        done["redispatched"] = await self._redispatch(stalled_since, round_)
        done["timed_out"], timed_out_threads = await self._time_out(stalled_since, round_)
        done["resumed"] = await self._resume(stalled_since, timed_out_threads, round_)
        done["runs_taken_over"] = len(await self.take_over_runs())
        for kind, count in done.items():
            REPAIRS.labels(kind).inc(count)
        if done.total():
            log.info("sweep repaired %s", dict(+done))
        await self._forget(now)
        return done

    async def _stale(self, status: CallStatus, before: float) -> list[CallRecord]:
        return await asyncio.to_thread(self.ledger.stale, status, before, self.policy.batch)

    async def _redispatch(self, stalled_since: float, round_: _Round) -> int:
        published = 0
        for record in await self._stale(CallStatus.INTENDED, stalled_since):
            if await self._gone(record.thread_id, round_):
                continue
            log.warning("publishing %s (%s): it was never published", record.task_id, record.tool)
            try:
                await asyncio.to_thread(self.dispatcher.dispatch, record, self.callback_url)
                await asyncio.to_thread(self.ledger.mark_dispatched, record.task_id)
            except Exception as exc:
                await self._failed([record], f"publishing failed: {_described(exc)}", round_)
                continue
            published += 1
        return published

    async def _time_out(self, stalled_since: float, round_: _Round) -> tuple[int, set[str]]:
        """Fail calls whose deadline passed `grace` seconds ago; the threads they belong to."""
        records = await asyncio.to_thread(self.ledger.overdue, stalled_since, self.policy.batch)
        threads: set[str] = set()
        failed_count = 0
        for record in records:
            if await self._gone(record.thread_id, round_):
                continue
            try:  # the timeout stands even if the broker cannot pass the revoke on
                await asyncio.to_thread(self.dispatcher.revoke, record.task_id)
            except Exception as exc:
                log.warning("could not revoke %s: %s", record.task_id, _described(exc))
            error = _timeout_error(record)
            failed = await asyncio.to_thread(
                self.ledger.finish, record.task_id, CallStatus.FAILED, None, error
            )
            if failed:  # else the worker's outcome came in first, and stands
                log.warning("%s (%s) timed out", record.task_id, record.tool)
                threads.add(record.thread_id)
                failed_count += 1
        return failed_count, threads

    async def _resume(self, stalled_since: float, also: set[str], round_: _Round) -> int:
        """Resume every thread holding an outcome nobody applied; how many threads. Records
        a resume leaves unapplied count as failed repairs."""
        unapplied: dict[str, list[CallRecord]] = {thread_id: [] for thread_id in sorted(also)}
        for status in (CallStatus.COMPLETED, CallStatus.FAILED):
            for record in await self._stale(status, stalled_since):
                unapplied.setdefault(record.thread_id, []).append(record)
        resumed = 0
        for thread_id, records in unapplied.items():
            if await self._gone(thread_id, round_):
                continue
            log.warning("resuming thread %s: it holds outcomes nobody applied", thread_id)
            reason = f"resuming thread {thread_id} did not apply the outcome"
            try:
                await self.resume_thread(thread_id)
                resumed += 1
            except Exception as exc:
                reason = f"resuming thread {thread_id} failed: {_described(exc)}"
            await self._failed(records, reason, round_)
        return resumed

    async def _gone(self, thread_id: str, round_: _Round) -> bool:
        """True if the thread no longer exists; its calls are then settled, once a round."""
        if self.thread_exists is None:
            return False
        if thread_id not in round_.gone:
            gone = not await self.thread_exists(thread_id)
            round_.gone[thread_id] = gone
            if gone:
                closed = await settle_thread(self.ledger, self.dispatcher, thread_id, GONE_REASON)
                round_.done["settled"] += len(closed)
        return round_.gone[thread_id]

    async def _failed(self, records: Iterable[CallRecord], reason: str, round_: _Round) -> None:
        """Count a failed repair on each record still where it was; park those at the limit."""
        for record in records:
            changed = await asyncio.to_thread(
                self.ledger.note_failed_repair,
                record.task_id, record.status, reason, self.policy.max_repairs,
            )  # fmt: skip
            if changed is not None and changed.status == CallStatus.ABANDONED:
                log.warning("parked %s (%s) of thread %s: %s", changed.task_id, changed.tool,
                            changed.thread_id, changed.reason)  # fmt: skip
                round_.done["parked"] += 1
            elif changed is not None:
                log.warning("repair %d of %s (%s) failed: %s", changed.repairs, changed.task_id,
                            changed.tool, reason)  # fmt: skip

    async def _forget(self, now: float) -> None:
        """Drop what the thread TTL left in the shared indexes of the ledger and the others."""
        forgotten = await asyncio.to_thread(self.ledger.forget_expired, now)
        if self.forget_expired is not None:
            forgotten += await self.forget_expired()
        if forgotten:
            log.info("forgot %d index entries of expired records", forgotten)


@dataclass
class _Round:
    """What one round has learned and done so far."""

    done: Counter[str] = field(default_factory=Counter)
    gone: dict[str, bool] = field(default_factory=dict)  # thread id → no longer exists


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _timeout_error(record: CallRecord) -> str:
    allowed = (record.deadline or record.created_at) - record.created_at
    return (
        f"{record.tool} timed out: it did not finish within its {allowed:.0f} s deadline "
        f"(attempts: {record.attempts}); it was cancelled and will not be retried"
    )
