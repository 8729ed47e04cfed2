"""The Celery app a worker process loads (`celery -A graphrelay.execution.worker_app`)."""

from graphrelay.config import load_settings
from graphrelay.execution.celery_app import create_celery_app

app = create_celery_app(load_settings())
