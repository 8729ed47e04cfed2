"""The embedded broker under a racing consumer: every message arrives whole, none is lost.

kombu's own file-system transport let a consumer read a message file before its writer had
filled it (an empty read killed the worker and lost the message); ours renames whole files in.
"""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

import graphrelay.backends.celery.filesystem_transport as transport


def _connection(folder: Path) -> Connection:
    return Connection(
        f"{transport.ALIAS}://",
        # SimpleQueue declares an exchange; kombu records it under `control_folder`,
        # which defaults to ./control in the working directory.
        transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder),
                           "control_folder": str(folder / "control"), "polling_interval": 0.001},
    )  # fmt: skip


def test_a_racing_consumer_gets_every_message_whole(tmp_path: Path) -> None:
    count, body = 300, "x" * 200_000  # big enough that writing takes a while
    received: list[int] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with _connection(tmp_path) as connection:
                queue = connection.SimpleQueue("race")
                while len(received) < count:
                    message = queue.get(timeout=30)
                    assert message.payload["body"] == body
                    received.append(message.payload["n"])
                    message.ack()
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    with _connection(tmp_path) as connection:
        # Bind before the consumer starts: connections in one process share kombu's
        # binding state, so a publisher could otherwise see the consumer's binding before
        # the exchange file exists, and kombu drops what it publishes then.
        queue = connection.SimpleQueue("race")
        consumer = threading.Thread(target=consume)
        consumer.start()
        for n in range(count):
            queue.put({"n": n, "body": body})
    consumer.join(60)

    assert errors == []
    assert sorted(received) == list(range(count))
    assert not list(tmp_path.glob("*.part"))
