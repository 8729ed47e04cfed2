"""The RabbitMQ topology the production profile declares: durable routed work queues whose
rejected messages are dead-lettered."""

from __future__ import annotations

import subprocess

from kombu import Connection, Consumer, Message

from graphrelay.backends.celery.app import create_celery_app
from graphrelay.backends.celery.queues import DEAD_LETTER_QUEUE, EXCHANGE
from tests.support.stack import Stack


def _queues(stack: Stack) -> dict[str, str]:
    vhost = stack.env["GRAPHRELAY_BROKER_URL"].rsplit("/", 1)[1]
    listing = subprocess.run(
        ["rabbitmqctl", "list_queues", "-p", vhost, "--quiet", "--no-table-headers",
         "name", "durable", "arguments"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return {line.split("\t")[0]: line for line in listing.splitlines() if line.strip()}


def test_work_queues_are_durable_and_dead_lettered(production_stack: Stack) -> None:
    queues = _queues(production_stack)

    for name in ("io", "cpu"):
        assert "\ttrue\t" in queues[name]
        assert "graphrelay.dlx" in queues[name]
    assert DEAD_LETTER_QUEUE in queues


def test_a_rejected_message_lands_in_the_dead_letter_queue(production_stack: Stack) -> None:
    app = create_celery_app(production_stack.settings)
    io_queue, dead_queue = (
        next(q for q in app.conf.task_queues if q.name == name)
        for name in ("io", DEAD_LETTER_QUEUE)
    )
    production_stack.stop("io")  # nobody else may consume the message we reject
    try:
        with Connection(production_stack.settings.broker_url) as connection:
            producer = connection.Producer()
            producer.publish({"poison": True}, exchange=EXCHANGE, routing_key="io",
                             declare=[io_queue], delivery_mode=2)  # fmt: skip

            def reject(body: object, message: Message) -> None:
                message.reject(requeue=False)

            with Consumer(connection, [io_queue], callbacks=[reject], accept=["json"]):
                connection.drain_events(timeout=10)
            dead = dead_queue(connection.default_channel).get(no_ack=True, accept=["json"])
        assert dead is not None
        assert dead.payload == {"poison": True}
    finally:
        production_stack.start("io")
