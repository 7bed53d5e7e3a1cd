"""The local Cloudflare Queues emulator: durable producers and push consumers on one SQLite file.

This module is the public face; the concepts live in siblings:

- :mod:`~edgerag_local.queues_broker`: :class:`LocalQueueBroker`, the durable store (one per state
  directory), leasing and settling batches atomically;
- :mod:`~edgerag_local.queues_producer`: :class:`LocalQueueProducer`, the ``Queue`` binding
  (``send``/``sendBatch`` with Cloudflare's limits and error codes);
- :mod:`~edgerag_local.queues_codec`: body content types (``json``/``text``/``bytes``/``v8``), sizes,
  and what a consumer gets back;
- :mod:`~edgerag_local.queues_consumer`: :class:`ConsumerSettings` (``[[queues.consumers]]``) and the
  ``MessageBatch``/``Message`` objects with their ack/retry precedence;
- :mod:`~edgerag_local.queues_dispatcher`: :class:`QueueDispatcher`, batching by size and timeout,
  retries, delays and dead-lettering;
- :mod:`~edgerag_local.queues_limits`: :class:`QueueLimits` and the error shapes.

Typical wiring (what the local host does for each worker)::

    broker = LocalQueueBroker(state.path_for("queues", "queues", ".sqlite"))
    env.INGEST_QUEUE = broker.producer("ingest")
    dispatcher = QueueDispatcher(broker, "ingest", ConsumerSettings.from_wrangler(table), worker.queue)
    await dispatcher.run_forever(stop)       # or: await dispatcher.drain() in tests

Delivery is at-least-once, as at the edge: a message whose batch was being handled when the process
died is delivered again, so consumers must be idempotent.
"""

from __future__ import annotations

from edgerag_local.queues_broker import LocalQueueBroker
from edgerag_local.queues_codec import CONTENT_TYPES
from edgerag_local.queues_consumer import (
    ConsumerConfigError,
    ConsumerSettings,
    LocalMessage,
    LocalMessageBatch,
)
from edgerag_local.queues_dispatcher import DispatchResult, QueueDispatcher
from edgerag_local.queues_limits import QueueLimits
from edgerag_local.queues_producer import LocalQueueProducer

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
    "QueueLimits",
]
