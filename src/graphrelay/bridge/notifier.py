"""The worker's side of resume: POST the signed outcome to the API until it is accepted, and
progress reports, best effort, along the way."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from graphrelay.bridge.calls import CallRecord
from graphrelay.bridge.messages import (
    CallbackMessage,
    ProgressMessage,
    progress_url,
    signed_headers,
)
from graphrelay.errors import CallbackRejectedError

log = logging.getLogger(__name__)

PROGRESS_TIMEOUT = 2.0  # seconds a progress report may take; it is dropped after


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status in (408, 429)
    return isinstance(exc, httpx.TransportError)


def retry_policy(max_attempts: int, initial_backoff: float, max_backoff: float) -> dict[str, Any]:
    """Tenacity arguments for webhook delivery: transport errors, 5xx, 408 and 429 retry."""
    return {
        "retry": retry_if_exception(_worth_retrying),
        "stop": stop_after_attempt(max_attempts),
        "wait": wait_exponential_jitter(multiplier=initial_backoff, max=max_backoff),
        "reraise": True,
    }


class WebhookNotifier:
    """`Notifier` over signed HTTP webhooks, with bounded exponential backoff."""

    def __init__(
        self,
        secret: str,
        *,
        max_attempts: int = 10,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        self._secret = secret
        self._retrying = Retrying(**retry_policy(max_attempts, initial_backoff, max_backoff))
        self._client = httpx.Client(timeout=timeout)

    def notify(self, record: CallRecord, callback_url: str) -> None:
        """Deliver the outcome of `record`; raises once the attempts run out, or at once for
        a refusal no retry can fix. A 410 (the call was closed) ends delivery quietly."""
        body = CallbackMessage.from_record(record).model_dump_json()
        for attempt in self._retrying:
            with attempt:
                self._post(record.task_id, body, callback_url)

    def _post(self, task_id: str, body: str, callback_url: str) -> None:
        # Same message id on every retry, so the receiver can tell a retry from a new event.
        headers = signed_headers(self._secret, f"msg_{task_id}", body)
        response = self._client.post(callback_url, content=body, headers=headers)
        if response.status_code == 410:  # the call was closed (say, its thread deleted)
            log.info("callback for %s not wanted any more: %s", task_id, response.text)
            return
        if response.status_code in (401, 400, 404, 413, 422):
            raise CallbackRejectedError(
                f"callback for {task_id} refused with {response.status_code}: {response.text}"
            )
        response.raise_for_status()
        log.info("callback for %s accepted (%s)", task_id, response.status_code)

    def progress(self, report: ProgressMessage, callback_url: str) -> None:
        """POST one progress report once; a report that cannot be delivered is logged and
        dropped (the outcome is what must not be lost, and it travels by `notify`)."""
        body = report.model_dump_json()
        headers = signed_headers(self._secret, f"progress_{uuid.uuid4().hex}", body)
        try:
            httpx.post(progress_url(callback_url), content=body, headers=headers,
                       timeout=PROGRESS_TIMEOUT)  # fmt: skip
        except httpx.HTTPError as exc:
            log.warning("progress report for %s dropped: %s", report.task_id, exc)
