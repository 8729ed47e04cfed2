"""Plan-and-execute with a parallel task DAG (LLMCompiler-style); see docs/planning.md."""

from graphrelay.graphs.plan_execute.graph import build_graph, build_sequential_graph

__all__ = ["build_graph", "build_sequential_graph"]
