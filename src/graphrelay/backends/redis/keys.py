"""Every Redis key graphrelay writes, in one table (mirrored in docs/state.md).

`P` is the key prefix (`GRAPHRELAY_KEY_PREFIX`, default `graphrelay`). Each adapter asks this
module for its key names and builds none itself, so what lives where, and what belongs to a
thread, is read here.

| key | type | written by | holds |
|---|---|---|---|
| `P:task:ID` | string | ledger | one background call's record (JSON) |
| `P:thread-tasks:THREAD` | zset | ledger | the thread's call ids, by creation time |
| `P:tasks-by-status:STATUS` | zset | ledger | ids of calls the sweeper may repair, by last change |
| `P:tasks-by-deadline` | zset | ledger | ids of open calls, by deadline |
| `P:KIND:ID` | string | run store | a document: `thread`, `thread-status`, `run`, `active-run` |
| `P:KIND-of:PARENT` | zset | run store | ids of KIND documents filed under PARENT (1) |
| `P:KIND-expiry-of:PARENT` | zset | run store | with a thread TTL: those ids by expiry (3) |
| `P:run-leases` | zset | leases | run id → when its lease runs out |
| `P:run-lease-owners` | hash | leases | run id → the process that holds its lease |
| `P:thread-lock:THREAD` | string | locks | the token of the thread lock's holder (expires) |
| `P:events:CHANNEL` | pub/sub | events | live events of a channel (2) |
| `P:kept-events:RUN` | stream | events | the events of a run started with `stream_resumable` |
| `P:cp:...` | | saver | checkpoints: see `SaverKeys` |

(1) `thread-of:all-threads`, `run-of:THREAD`, `active-run-of:THREAD`.
(2) A run (`RUN`), a thread (`thread:THREAD`), or stop requests (`!control`).
(3) Only for a parent that is no document and never expires (`all-threads`): its members
    leave when their documents expire. A thread's own filings expire with the thread.
(4) `list(None)` finds every thread by its `namespaces` key (SCAN): a thread is its own keys,
    so nothing of it outlives its TTL. `DEL P:cp:threads` once after upgrading.

The saver's keys (`S` = `P:cp`, `{T}` = the thread id as a Redis Cluster hash tag, `NS` = the
checkpoint namespace, last so it may hold any character):

| key | type | holds |
|---|---|---|
| `S:threads` | set | no longer written: older versions listed every thread id here (4) |
| `S:run-threads:RUN` | set | threads a run wrote checkpoints to |
| `S:{T}:namespaces` | set | the thread's checkpoint namespaces |
| `S:{T}:runs` | set | run ids that wrote to the thread |
| `S:{T}:run:RUN` | set | `NS␟ID` of each checkpoint that run wrote |
| `S:{T}:i:NS` | zset | checkpoint ids (score 0: ordered by id, i.e. by time) |
| `S:{T}:c:NS` / `m:NS` / `p:NS` | hash | id → checkpoint (without values) / metadata / parent id |
| `S:{T}:v:NS` | hash | id → JSON list of the blob fields the checkpoint reads |
| `S:{T}:b:NS` | hash | `CHANNEL␟VERSION` → value: each channel version once |
| `S:{T}:d:NS` | hash | `CHANNEL␟VERSION` → the field a delta builds on |
| `S:{T}:w:ID:NS` | hash | `TASK␟IDX` → one pending write of checkpoint ID |

Celery's result backend writes its own keys (`celery-task-meta-*`), which graphrelay never
reads: background calls store no Celery result.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """The keys of one graphrelay deployment (one prefix)."""

    prefix: str = "graphrelay"

    # -- ledger ----------------------------------------------------------------------------

    def task(self, task_id: str) -> str:
        """One background call's record."""
        return f"{self.prefix}:task:{task_id}"

    def thread_tasks(self, thread_id: str) -> str:
        """The thread's call ids by creation time."""
        return f"{self.prefix}:thread-tasks:{thread_id}"

    def tasks_by_status(self, status: str) -> str:
        """Ids of the calls in `status`, by last change."""
        return f"{self.prefix}:tasks-by-status:{status}"

    @property
    def tasks_by_deadline(self) -> str:
        """Ids of the open calls, by deadline."""
        return f"{self.prefix}:tasks-by-deadline"

    # -- run store -------------------------------------------------------------------------

    def document(self, kind: str, doc_id: str) -> str:
        """One document of the run store."""
        return f"{self.prefix}:{kind}:{doc_id}"

    def filing(self, kind: str, parent: str) -> str:
        """The ids of the `kind` documents filed under `parent`."""
        return f"{self.prefix}:{kind}-of:{parent}"

    def filing_expiry(self, kind: str, parent: str) -> str:
        """The same ids by when their documents expire (for a parent that never expires)."""
        return f"{self.prefix}:{kind}-expiry-of:{parent}"

    # -- leases and locks -------------------------------------------------------------------

    @property
    def run_leases(self) -> str:
        """Run id → when its lease runs out."""
        return f"{self.prefix}:run-leases"

    @property
    def run_lease_owners(self) -> str:
        """Run id → the process holding its lease."""
        return f"{self.prefix}:run-lease-owners"

    def thread_lock(self, thread_id: str) -> str:
        """The thread lock's holder token."""
        return f"{self.prefix}:thread-lock:{thread_id}"

    # -- events ----------------------------------------------------------------------------

    @property
    def events_prefix(self) -> str:
        """What every event channel name starts with."""
        return f"{self.prefix}:events:"

    def events(self, channel: str) -> str:
        """The pub/sub channel of a run, a thread, or the control channel."""
        return f"{self.events_prefix}{channel}"

    def kept_events(self, channel: str) -> str:
        """The stream of a resumable run's events."""
        return f"{self.prefix}:kept-events:{channel}"

    # -- checkpoints -----------------------------------------------------------------------

    @property
    def saver(self) -> SaverKeys:
        """The checkpoint saver's keys."""
        return SaverKeys(f"{self.prefix}:cp")


@dataclass(frozen=True)
class NamespaceKeys:
    """The keys of one (thread, checkpoint namespace)."""

    index: str
    checkpoints: str
    metadata: str
    parents: str
    versions: str
    blobs: str
    deltas: str
    writes_prefix: str
    suffix: str

    def writes(self, checkpoint_id: str) -> str:
        """The pending-writes hash of one checkpoint."""
        return f"{self.writes_prefix}{checkpoint_id}{self.suffix}"

    def fixed(self) -> list[str]:
        """Every key but the per-checkpoint writes hashes."""
        return [self.index, self.checkpoints, self.metadata, self.parents, self.versions,
                self.blobs, self.deltas]  # fmt: skip


@dataclass(frozen=True)
class SaverKeys:
    """The checkpoint saver's keys under its own prefix (`P:cp` in a deployment)."""

    prefix: str = "graphrelay:cp"

    @property
    def legacy_threads(self) -> str:
        """Every thread id, as older versions kept them; a thread delete still leaves it."""
        return f"{self.prefix}:threads"

    def namespaces_pattern(self) -> str:
        """SCAN's MATCH pattern for every thread's `namespaces` key."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}:{{*}}:namespaces"

    def run_threads(self, run_id: str) -> str:
        """The threads a run wrote checkpoints to."""
        return f"{self.prefix}:run-threads:{run_id}"

    def thread(self, thread_id: str) -> str:
        """What every key of one thread starts with (a Redis Cluster hash tag)."""
        return f"{self.prefix}:{{{thread_id}}}"

    def namespaces(self, thread_id: str) -> str:
        """The thread's checkpoint namespaces."""
        return f"{self.thread(thread_id)}:namespaces"

    def runs(self, thread_id: str) -> str:
        """The runs that wrote to the thread."""
        return f"{self.thread(thread_id)}:runs"

    def run(self, thread_id: str, run_id: str) -> str:
        """`NS␟ID` of each checkpoint that run wrote to the thread."""
        return f"{self.thread(thread_id)}:run:{run_id}"

    def namespace(self, thread_id: str, ns: str) -> NamespaceKeys:
        """The keys of one namespace of the thread."""
        base = self.thread(thread_id)
        return NamespaceKeys(
            index=f"{base}:i:{ns}",
            checkpoints=f"{base}:c:{ns}",
            metadata=f"{base}:m:{ns}",
            parents=f"{base}:p:{ns}",
            versions=f"{base}:v:{ns}",
            blobs=f"{base}:b:{ns}",
            deltas=f"{base}:d:{ns}",
            writes_prefix=f"{base}:w:",
            suffix=f":{ns}",
        )
