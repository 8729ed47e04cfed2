"""Progress from inside a background tool, shown to clients streaming the thread.

    from graphrelay import background_tool, report_progress

    @background_tool(queue="cpu")
    def index_documents(path: str) -> dict:
        for n, file in enumerate(files):
            report_progress(n / len(files), f"read {file}")

The worker POSTs each report, signed like the task callback, to the API's
`/internal/tasks/progress`; the API streams it as a `custom` event on the thread. Progress is
best effort: a report that cannot be delivered is logged and dropped, never raised into the
tool (the result is what must not be lost, and it travels by the callback).
"""

from __future__ import annotations

from graphrelay.bridge.messages import ProgressMessage
from graphrelay.bridge.worker import running_call


def report_progress(fraction: float, message: str = "") -> None:
    """Report how far the running background tool is (0.0 to 1.0, clamped); a no-op outside
    a background call and for calls nobody waits for (fire-and-forget)."""
    call = running_call()
    if call is None or not call.callback_url:
        return
    report = ProgressMessage(
        task_id=call.task_id,
        thread_id=call.thread_id,
        fraction=min(max(fraction, 0.0), 1.0),
        message=message[:2000],
    )
    call.notifier.progress(report, call.callback_url)
