"""Opens a LangGraph checkpointer from a URL.

`redis://` and `rediss://` give graphrelay's module-free Redis saver; `sqlite:///PATH` and
`postgresql://...` give LangGraph's own savers; `memory://` the in-memory one (tests only: it
forgets everything when the process ends).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from graphrelay.state.redis_saver import RedisSaver


@contextlib.asynccontextmanager
async def open_checkpointer(
    url: str, *, prefix: str = "graphrelay", ttl_seconds: float | None = None
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """The saver that `url` names, set up and ready; closed when the block ends.

    `prefix` and `ttl_seconds` apply to the Redis saver only.
    """
    if url.startswith("memory://"):
        yield InMemorySaver()
    elif url.startswith(("redis://", "rediss://")):
        redis_saver = RedisSaver(url, prefix=f"{prefix}:cp", ttl_seconds=ttl_seconds)
        try:
            yield redis_saver
        finally:
            redis_saver.close()
    elif url.startswith("sqlite:///"):
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()
            yield saver
    elif url.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
    else:
        raise ValueError(
            f"unsupported checkpointer URL {url!r}: use redis://..., sqlite:///PATH, "
            "postgresql://... or memory://"
        )
