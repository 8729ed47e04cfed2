"""kombu's file-system transport, with messages written atomically.

kombu creates a message file and then writes it, while a consumer polling the folder may
move and read the file in between: it reads an empty file, the worker dies on the JSON error
and the message is lost (seen here under load). This subclass writes each message to a
temporary name the consumers ignore and renames it into place, so a message file is whole
from the moment it can be seen.
"""

from __future__ import annotations

import os
import uuid
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


class Transport(filesystem.Transport):
    """The file-system transport with atomic message files."""

    Channel = Channel


TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
