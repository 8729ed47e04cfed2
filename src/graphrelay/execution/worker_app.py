"""Deprecated path of the worker's Celery app: use `celery -A graphrelay.runtime.worker`."""

import warnings

from graphrelay.errors import GraphrelayDeprecationWarning

warnings.warn(
    "`graphrelay.execution.worker_app` moved to `graphrelay.runtime.worker`: use "
    "`celery -A graphrelay.runtime.worker ...`; the old path stops working in the next release",
    GraphrelayDeprecationWarning,
    stacklevel=2,
)

from graphrelay.runtime.worker import app, sweep  # noqa: E402

__all__ = ["app", "sweep"]
