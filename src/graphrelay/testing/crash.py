"""Crash points: named steps where a process kills itself, so fault tests hit exact windows.

`GRAPHRELAY_CRASH_AT=after_publish` (a comma-separated list is allowed) makes the process that
reaches that step SIGKILL itself there: no cleanup, no goodbye, as if the machine died. Unset,
a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

from graphrelay.errors import UnknownCrashPointError

CRASH_ENV = "GRAPHRELAY_CRASH_AT"

CRASH_POINTS = {
    "after_intent": "API: the ledger holds INTENDED, nothing is published",
    "after_publish": "API: the task is published, the ledger still says INTENDED",
    "after_interrupt_checkpoint": "API: the run stopped on its interrupt, nothing re-checked",
    "after_callback_accepted": "API: the outcome is stored, the thread is not resumed",
    "mid_resume": "API: the thread resumed with the outcome, the ledger not yet APPLIED",
    "worker_after_result": "worker: the outcome is stored, no callback sent",
}


def armed() -> frozenset[str]:
    """The crash points the environment arms; a clear error for names that don't exist."""
    names = frozenset(filter(None, (n.strip() for n in os.environ.get(CRASH_ENV, "").split(","))))
    unknown = names - CRASH_POINTS.keys()
    if unknown:
        raise UnknownCrashPointError(
            f"{CRASH_ENV} names unknown crash points {sorted(unknown)}; "
            f"known: {sorted(CRASH_POINTS)}"
        )
    return names


def crash_point(name: str) -> None:
    """SIGKILL this process here if `name` is armed."""
    assert name in CRASH_POINTS, f"unregistered crash point {name}"
    if CRASH_ENV in os.environ and name in armed():
        os.kill(os.getpid(), signal.SIGKILL)
