"""The example agent and its tools."""
