"""One composition root per process: the API (`api.py`), the worker (`worker.py`), the sweeper
(`sweeper.py`); the engine they share (`engine.py`), health checks, graph loading."""
