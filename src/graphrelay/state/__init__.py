"""Where agent state lives: checkpointers chosen by URL."""
