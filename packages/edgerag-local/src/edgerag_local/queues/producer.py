"""The producer side of the local Queues emulator: what ``env.MY_QUEUE`` is for a worker run locally.

:class:`LocalQueueProducer` implements :class:`edgerag.ports.Queue`. It validates exactly what the
edge validates, in the same order: option names and content types in the caller (``TypeError``, as
workerd raises before sending), then sizes, counts and delays as the queue service does
(:class:`~edgerag_local.queues.errors.QueueError` with the service's error code). Nothing is written unless
the whole call is valid, so a rejected ``sendBatch`` sends nothing, as at the edge. Delays take the
most specific value: the message's ``delaySeconds``, else the batch's, else the producer's
``delivery_delay`` from wrangler's ``[[queues.producers]]``.

Bodies are serialised by :mod:`edgerag_local.queues.codec`; limits live in
:class:`~edgerag_local.queues.limits.QueueLimits`. To add an option, add it to the ``allowed`` set of
the method's :func:`~edgerag_local.core.options.merge_options` call and handle it before ``enqueue``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from edgerag_local.core.options import merge_options
from edgerag_local.queues.codec import EncodedBody, encode_body, normalise_content_type
from edgerag_local.queues.limits import (
    BATCH_COUNT_OUT_OF_BOUNDS,
    BATCH_DELAY_INVALID,
    BATCH_SIZE_OUT_OF_BOUNDS,
    MESSAGE_METADATA_INVALID,
    MESSAGE_SIZE_OUT_OF_BOUNDS,
    check_delay,
    queue_error,
)

if TYPE_CHECKING:
    from edgerag_local.queues.broker import LocalQueueBroker

__all__ = ["LocalQueueProducer"]

_MESSAGE_KEYS = frozenset({"body", "contentType", "delaySeconds"})


class LocalQueueProducer:
    """A queue producer binding backed by a :class:`~edgerag_local.queues.broker.LocalQueueBroker`."""

    def __init__(self, broker: LocalQueueBroker, queue_name: str, *, delivery_delay: int = 0) -> None:
        if not isinstance(queue_name, str) or not queue_name:
            raise ValueError(f"queue name must be a non-empty string, got {queue_name!r}")
        self._broker = broker
        self.queue_name = queue_name
        self.delivery_delay = check_delay(
            delivery_delay, broker.limits, code=MESSAGE_METADATA_INVALID, name="delivery_delay"
        )

    def __repr__(self) -> str:
        return f"LocalQueueProducer({self.queue_name!r})"

    async def send(
        self,
        body: Any,
        options: Mapping[str, Any] | None = None,
        *,
        contentType: str | None = None,
        delaySeconds: int | None = None,
    ) -> None:
        """Send one message; ``contentType`` defaults to ``"json"``, ``delaySeconds`` to the producer's."""
        opts = merge_options(
            options,
            _given(contentType=contentType, delaySeconds=delaySeconds),
            allowed=("contentType", "delaySeconds"),
            where="Queue.send",
        )
        limits = self._broker.limits
        content_type = opts.get("contentType")
        if content_type is not None:
            content_type = normalise_content_type(content_type)
        delay = self.delivery_delay
        if "delaySeconds" in opts:
            delay = check_delay(opts["delaySeconds"], limits, code=MESSAGE_METADATA_INVALID)
        encoded = encode_body(body, content_type)
        if encoded.size > limits.max_message_bytes:
            raise queue_error(
                MESSAGE_SIZE_OUT_OF_BOUNDS,
                f"message length of {encoded.size} bytes exceeds limit of {limits.max_message_bytes}",
            )
        self._broker.enqueue(self.queue_name, [(encoded, delay)])

    async def sendBatch(
        self,
        messages: Iterable[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
        *,
        delaySeconds: int | None = None,
    ) -> None:
        """Send up to 100 messages (256 KB in total) atomically: all are queued or none is."""
        opts = merge_options(
            options, _given(delaySeconds=delaySeconds), allowed=("delaySeconds",), where="Queue.sendBatch"
        )
        limits = self._broker.limits
        if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable):
            raise TypeError(
                f"Queue.sendBatch: messages must be an iterable of {{'body': ...}} objects, "
                f"got {type(messages).__name__}"
            )
        requests = list(messages)
        if not requests:
            raise TypeError("sendBatch() requires at least one message")
        batch_delay = self.delivery_delay
        if "delaySeconds" in opts:
            batch_delay = check_delay(opts["delaySeconds"], limits, code=BATCH_DELAY_INVALID)
        items: list[tuple[EncodedBody, int]] = []
        for index, request in enumerate(requests):
            items.append(self._encode_request(index, request, batch_delay))
        if len(items) > limits.max_batch_messages:
            raise queue_error(
                BATCH_COUNT_OUT_OF_BOUNDS,
                f"batch message count of {len(items)} exceeds limit of {limits.max_batch_messages}",
            )
        largest = max(body.size for body, _ in items)
        if largest > limits.max_message_bytes:
            raise queue_error(
                MESSAGE_SIZE_OUT_OF_BOUNDS,
                f"message in batch has length {largest} bytes which exceeds single message size limit "
                f"of {limits.max_message_bytes}",
            )
        total = sum(body.size for body, _ in items)
        if total > limits.max_batch_bytes:
            raise queue_error(
                BATCH_SIZE_OUT_OF_BOUNDS,
                f"batch size of {total} bytes exceeds limit of {limits.max_batch_bytes}",
            )
        self._broker.enqueue(self.queue_name, items)

    def _encode_request(self, index: int, request: Any, batch_delay: int) -> tuple[EncodedBody, int]:
        where = f"Queue.sendBatch: messages[{index}]"
        if not isinstance(request, Mapping):
            raise TypeError(f"{where} must be an object like {{'body': ...}}, got {type(request).__name__}")
        unknown = sorted(set(request) - _MESSAGE_KEYS)
        if unknown:
            raise TypeError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(_MESSAGE_KEYS)}")
        if "body" not in request:
            raise TypeError("Message body cannot be undefined")
        content_type = request.get("contentType")
        if content_type is not None:
            content_type = normalise_content_type(content_type)
        delay = batch_delay
        if request.get("delaySeconds") is not None:
            delay = check_delay(request["delaySeconds"], self._broker.limits, code=MESSAGE_METADATA_INVALID)
        return encode_body(request["body"], content_type), delay


def _given(**kwargs: Any) -> dict[str, Any]:
    # Keyword options left at None were not passed: they must not mask the same option given in the
    # trailing options dict (merge_options lets keywords override the dict).
    return {k: v for k, v in kwargs.items() if v is not None}
