"""Redis adapters (plain Redis, no modules): every key in `keys.py`, the drivers in `wire.py`."""
