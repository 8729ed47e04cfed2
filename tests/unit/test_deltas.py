"""When a list channel's new version may be stored as the items appended to the last one."""

from __future__ import annotations

import pytest

from graphrelay.backends.redis.deltas import DeltaTracker, needed_with_bases

KEY = ("thread", "", "messages")


def _tracker(snapshot_every: int = 4, capacity: int = 8) -> DeltaTracker:
    return DeltaTracker(snapshot_every, capacity)


def test_a_list_that_extends_the_last_written_one_is_a_delta() -> None:
    tracker, first = _tracker(), ["a", "b"]
    tracker.record(KEY, "messages\x1f1", first, 0)

    delta = tracker.plan(KEY, [*first, "c"])

    assert delta is not None
    assert delta.base.field == "messages\x1f1"
    assert delta.appended == ["c"]


def test_equal_items_that_are_other_objects_are_not_an_extension() -> None:
    tracker = _tracker()
    tracker.record(KEY, "messages\x1f1", [["a"]], 0)

    assert tracker.plan(KEY, [["a"], ["b"]]) is None  # e.g. the list was deserialized


def test_a_shorter_or_reordered_list_is_not_an_extension() -> None:
    tracker, a, b = _tracker(), "a" * 3, "b" * 3
    tracker.record(KEY, "messages\x1f1", [a, b], 0)

    assert tracker.plan(KEY, [a]) is None
    assert tracker.plan(KEY, [b, a, "c"]) is None


def test_non_lists_and_unknown_channels_are_written_whole() -> None:
    tracker = _tracker()
    tracker.record(KEY, "messages\x1f1", "text", 0)

    assert tracker.plan(KEY, "text and more") is None
    assert tracker.plan(("thread", "", "other"), ["a"]) is None
    assert tracker.plan(KEY, ("a", "b")) is None


def test_the_chain_ends_in_a_snapshot_every_n_versions() -> None:
    tracker, items = _tracker(snapshot_every=3), ["a"]
    tracker.record(KEY, "v0", items, 0)
    depths = []
    for version in range(1, 7):
        items = [*items, str(version)]
        delta = tracker.plan(KEY, items)
        depth = delta.base.depth + 1 if delta else 0
        tracker.record(KEY, f"v{version}", items, depth)
        depths.append(depth)

    assert depths == [1, 2, 0, 1, 2, 0]


def test_snapshot_every_one_turns_deltas_off() -> None:
    tracker, items = _tracker(snapshot_every=1), ["a"]
    tracker.record(KEY, "v0", items, 0)

    assert tracker.plan(KEY, [*items, "b"]) is None


def test_the_cache_keeps_only_the_most_recent_channels() -> None:
    tracker = _tracker(capacity=2)
    lists = {name: [name] for name in "abc"}
    for name, items in lists.items():
        tracker.record(("thread", "", name), f"{name}\x1f1", items, 0)

    assert tracker.plan(("thread", "", "a"), [*lists["a"], "x"]) is None  # evicted
    assert tracker.plan(("thread", "", "c"), [*lists["c"], "x"]) is not None


def test_forgetting_a_thread_drops_its_channels_only() -> None:
    tracker, items = _tracker(), ["a"]
    tracker.record(("gone", "", "messages"), "f", items, 0)
    tracker.record(("kept", "", "messages"), "f", items, 0)

    tracker.forget_thread("gone")

    assert tracker.plan(("gone", "", "messages"), [*items, "b"]) is None
    assert tracker.plan(("kept", "", "messages"), [*items, "b"]) is not None


def test_snapshot_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="snapshot_every"):
        DeltaTracker(0, 8)


def test_needed_fields_include_every_base_of_their_deltas() -> None:
    bases = {b"v3": b"v2", b"v2": b"v1", b"w2": b"w1"}

    assert needed_with_bases({b"v3"}, bases) == {b"v3", b"v2", b"v1"}
    assert needed_with_bases({b"v2", b"x"}, bases) == {b"v2", b"v1", b"x"}
