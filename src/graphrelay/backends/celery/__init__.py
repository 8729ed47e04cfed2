"""Celery adapters: the app, its queues, the dispatcher, background tools as tasks, and the
embedded file-system transport."""
