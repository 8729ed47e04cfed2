"""The broker topology: the work queues on a direct exchange, and the dead-letter queue.

Queue names come from `config.WORK_QUEUES` (a tool names one, a worker pool serves one);
everything here is declared from them. Messages a worker rejects (poison calls, unknown task
names) go to the `graphrelay.dlx` exchange and wait in `dead_letter` for inspection.
`quorum_queues` declares the work queues as RabbitMQ quorum queues, which also dead-letter a
message delivered more than `max_deliveries` times.
"""

from __future__ import annotations

from kombu.entity import Exchange, Queue

from graphrelay.config import WORK_QUEUES, Settings

EXCHANGE = Exchange("graphrelay", type="direct", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("graphrelay.dlx", type="direct", durable=True)
DEAD_LETTER_QUEUE = "dead_letter"
DEFAULT_QUEUE = WORK_QUEUES[0]
SWEEP_QUEUE = "cpu"  # where the beat job's sweeper rounds run


def work_queue(name: str, settings: Settings) -> Queue:
    """A durable work queue bound by its own name, dead-lettering what workers reject."""
    arguments: dict[str, object] = {
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
        "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
    }
    if settings.quorum_queues:
        # Replicated queues; the broker itself dead-letters a message redelivered too often.
        arguments |= {"x-queue-type": "quorum", "x-delivery-limit": settings.max_deliveries}
    return Queue(name, EXCHANGE, routing_key=name, durable=True, queue_arguments=arguments)


def all_queues(settings: Settings) -> list[Queue]:
    """Every queue graphrelay declares: the work queues, then the dead-letter queue."""
    return [
        *(work_queue(name, settings) for name in WORK_QUEUES),
        Queue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, routing_key=DEAD_LETTER_QUEUE),
    ]
