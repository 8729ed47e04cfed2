"""Fault tests reuse the integration stacks."""

from tests.integration.conftest import production_stack

__all__ = ["production_stack"]
