"""Tool implementations: plain functions the agent tools wrap."""
