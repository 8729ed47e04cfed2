"""Helpers graphrelay ships for tests and benchmarks: child processes, crash points."""
