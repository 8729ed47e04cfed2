"""Deprecated: the worker's Celery app moved to `graphrelay.runtime.worker`.

`celery -A graphrelay.execution.worker_app` keeps working until the next release, with a
`GraphrelayDeprecationWarning`.
"""
