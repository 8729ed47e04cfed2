"""kombu's file-system transport, with messages written atomically.

kombu creates a message file and then writes it, while a consumer polling the folder may
move and read the file in between: it reads an empty file, the worker dies on the JSON error
and the message is lost (seen here under load). This subclass writes each message to a
temporary name the consumers ignore and renames it into place, so a message file is whole
from the moment it can be seen. The exchange table that the first `queue_bind` creates had the
same race (a publisher read it empty and failed), so it is linked into place whole as well.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "graphrelay-filesystem"


class Channel(filesystem.Channel):
    """A channel whose `_put` renames a complete file into the queue folder."""

    # Same signature as kombu's filesystem channel, which itself differs from its base.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # ends in ".part", so no consumer picks it up
        with open(partial, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)

    def _queue_bind(self, exchange: Any, routing_key: Any, pattern: Any, queue: Any) -> None:
        file: Path = self._exchange_file(exchange)  # type: ignore[no-untyped-call]
        if not file.exists():
            self.control_folder.mkdir(parents=True, exist_ok=True)
            table = [filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")]
            partial = file.with_name(f"{file.name}.{uuid.uuid4().hex}.part")
            partial.write_bytes(str_to_bytes(dumps(table)))
            try:
                os.link(partial, file)  # fails if another process created it meanwhile
                return
            except FileExistsError:
                pass  # the table exists now: add to it under kombu's file lock
            finally:
                partial.unlink()
        super()._queue_bind(exchange, routing_key, pattern, queue)  # type: ignore[no-untyped-call]


class Transport(filesystem.Transport):
    """The file-system transport with atomic message files."""

    Channel = Channel


TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
