"""The local Cloudflare Queues emulator: durable producers and push consumers on one SQLite file.

This module is the public face; the concepts live in siblings:

- :mod:`~edgerag_local.queues.broker`: :class:`LocalQueueBroker`, the durable store (one per state
  directory), leasing and settling batches atomically;
- :mod:`~edgerag_local.queues.producer`: :class:`LocalQueueProducer`, the ``Queue`` binding
  (``send``/``sendBatch`` with Cloudflare's limits and error codes);
- :mod:`~edgerag_local.queues.codec`: body content types (``json``/``text``/``bytes``/``v8``), sizes,
  and what a consumer gets back;
- :mod:`~edgerag_local.queues.consumer`: :class:`ConsumerSettings` (``[[queues.consumers]]``) and the
  ``MessageBatch``/``Message`` objects with their ack/retry precedence;
- :mod:`~edgerag_local.queues.dispatcher`: :class:`QueueDispatcher`, batching by size and timeout,
  retries, delays and dead-lettering;
- :mod:`~edgerag_local.queues.limits`: :class:`QueueLimits` and the error shapes.

Typical wiring (what the local host does for each worker)::

    broker = LocalQueueBroker(state.path_for("queues", "queues", ".sqlite"))
    env.INGEST_QUEUE = producer(broker, "ingest")
    dispatcher = QueueDispatcher(broker, "ingest", ConsumerSettings.from_wrangler(table), worker.queue)
    await dispatcher.run_forever(stop)       # or: await dispatcher.drain() in tests

Delivery is at-least-once, as at the edge: a message whose batch was being handled when the process
died is delivered again, so consumers must be idempotent.
"""

from __future__ import annotations

from edgerag_local.queues.broker import LocalQueueBroker
from edgerag_local.queues.codec import CONTENT_TYPES
from edgerag_local.queues.consumer import (
    ConsumerConfigError,
    ConsumerSettings,
    LocalMessage,
    LocalMessageBatch,
)
from edgerag_local.queues.dispatcher import DispatchResult, QueueDispatcher
from edgerag_local.queues.errors import QueueError
from edgerag_local.queues.limits import QueueLimits
from edgerag_local.queues.producer import LocalQueueProducer

__all__ = [
    "CONTENT_TYPES",
    "ConsumerConfigError",
    "ConsumerSettings",
    "DispatchResult",
    "LocalMessage",
    "LocalMessageBatch",
    "LocalQueueBroker",
    "LocalQueueProducer",
    "QueueDispatcher",
    "QueueError",
    "QueueLimits",
    "producer",
]


def producer(broker: LocalQueueBroker, queue_name: str, *, delivery_delay: int = 0) -> LocalQueueProducer:
    """A ``Queue`` producer binding for ``queue_name`` on ``broker``; ``delivery_delay`` is wrangler's
    producer default (``[[queues.producers]] delivery_delay``)."""
    return LocalQueueProducer(broker, queue_name, delivery_delay=delivery_delay)
