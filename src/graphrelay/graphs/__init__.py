"""What graphrelay serves out of the box: chat models (the offline scripted one included),
plan-and-execute with a parallel task DAG, and the researcher. Nothing in the core imports
this package: graphs are named by spec strings in settings."""
