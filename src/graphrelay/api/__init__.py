"""HTTP only: the Agent Server's routes over the run engine (`server/`), the task callbacks,
health checks. The process that serves it is composed in `runtime/api.py`."""
