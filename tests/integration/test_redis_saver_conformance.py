"""Must-show 1 of the Redis saver: LangGraph's own conformance suite, every capability."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from graphrelay.backends.redis.saver import RedisSaver
from tests.support import services

PREFIXES: list[str] = []


@checkpointer_test(name="graphrelay RedisSaver")
async def redis_saver() -> AsyncGenerator[RedisSaver, None]:
    # A fresh prefix per capability suite: `list(None)` must see only that suite's threads.
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}:cp"
    PREFIXES.append(prefix)
    saver = RedisSaver(services.REDIS_URL, prefix=prefix)
    yield saver
    saver.close()


async def test_every_base_and_extended_capability_passes() -> None:
    services.check_redis()
    try:
        report = await validate(redis_saver)
    finally:
        for prefix in PREFIXES:
            services.clear_prefix(prefix)

    report.print_report()
    failures = {name: result.failures for name, result in report.results.items() if result.failures}
    assert failures == {}
    for capability in ALL_CAPABILITIES:
        result = report.results[capability.value]
        assert result.detected and result.passed, capability.value
        assert result.tests_passed > 0 and result.tests_skipped == 0, capability.value
    assert report.passed_all()
