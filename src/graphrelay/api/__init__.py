"""The orchestrator HTTP API, in the paths and shapes of the LangGraph Agent Server."""
