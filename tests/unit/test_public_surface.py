"""What a user imports from `graphrelay`, the one error hierarchy, and the deprecated names
that keep working for one release."""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings

import pytest

import graphrelay
from graphrelay import errors
from graphrelay.runtime.graphs import load_factory


def test_every_public_name_imports() -> None:
    for name in graphrelay.__all__:
        assert getattr(graphrelay, name) is not None, name
    assert callable(graphrelay.background_tool) and callable(graphrelay.report_progress)


def test_every_exception_a_user_may_catch_is_a_graphrelay_error() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, Exception) and not issubclass(c, Warning)]  # fmt: skip
    assert len(classes) > 5
    assert all(issubclass(c, errors.GraphrelayError) for c in classes)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        graphrelay.nothing_here  # noqa: B018


def test_a_graph_spec_under_the_old_module_path_loads_with_a_warning() -> None:
    with pytest.warns(errors.GraphrelayDeprecationWarning, match=r"graphrelay\.graphs\.research"):
        factory = load_factory("graphrelay.orchestrator.research:build_graph")
    assert factory is load_factory("graphrelay.graphs.research:build_graph")


def test_a_graph_spec_that_names_nothing_is_a_clear_error() -> None:
    with pytest.raises(errors.GraphLoadError, match=r"cannot import graphrelay\.nowhere"):
        load_factory("graphrelay.nowhere:build_graph")
    with pytest.raises(errors.GraphLoadError, match="must look like"):
        load_factory("graphrelay.graphs.research")


def test_the_old_worker_app_path_warns_and_gives_the_worker_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("GRAPHRELAY_DATA_DIR", str(tmp_path))
    sys.modules.pop("graphrelay.execution.worker_app", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("graphrelay.execution.worker_app")
    messages = [str(w.message) for w in caught if w.category is errors.GraphrelayDeprecationWarning]
    assert any("graphrelay.runtime.worker" in m for m in messages)
    new = importlib.import_module("graphrelay.runtime.worker")
    assert old.app is new.app
    assert "graphrelay.sweep" in new.app.tasks
