"""The Celery data plane: app, queues and routing, worker pools, dead letters."""
