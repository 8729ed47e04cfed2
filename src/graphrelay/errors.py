"""Every exception a graphrelay user may catch, under one base: `GraphrelayError`.

Each also derives from the built-in it used to be (`ValueError`, `RuntimeError`), so code
written against those keeps working.
"""

from __future__ import annotations


class GraphrelayError(Exception):
    """Base of every error graphrelay raises on purpose."""


class GraphrelayDeprecationWarning(FutureWarning):
    """A name or string that still works but goes away in the next release.

    A `FutureWarning`, so Python shows it by default: the deprecated strings live in the
    settings and command lines of operators, not only in code under development.
    """


class ConfigurationError(GraphrelayError, ValueError):
    """A setting, URL or spec that graphrelay cannot act on; the message says how to fix it."""


class GraphLoadError(ConfigurationError):
    """A graph spec (`module:attribute`) that does not name a graph factory."""


class BackgroundToolOutsideGraphError(GraphrelayError, RuntimeError):
    """A background tool was called where it cannot suspend: outside a checkpointed graph."""


class BackgroundCallFailedError(GraphrelayError):
    """A background call made from a plain node (`BackgroundTool.call`) failed; the message is
    the readable error its body or the sweeper stored."""


class BridgeNotConfiguredError(GraphrelayError, RuntimeError):
    """A background tool ran where no bridge services were given to the graph run."""


class PoisonCallError(GraphrelayError):
    """A background call whose worker died `max_deliveries` times: it goes to dead letters."""


class CallbackRejectedError(GraphrelayError):
    """The API answered a task callback with a 4xx that no retry can fix."""


class InvalidSignatureError(GraphrelayError):
    """A webhook's signature, timestamp or headers do not verify."""


class UnknownCrashPointError(ConfigurationError):
    """GRAPHRELAY_CRASH_AT names a step that has no crash point."""


class PlanError(GraphrelayError, ValueError):
    """A plan that cannot run; the message says every problem, for the planner to fix."""


class HealthCheckError(GraphrelayError):
    """A service check failed; the message says what is wrong and how to fix it."""


class DemoError(GraphrelayError):
    """The demo could not finish; the message says why."""
