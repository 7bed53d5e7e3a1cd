"""The consumer side of the local Queues emulator: settings, and the batch a ``queue()`` handler gets.

:class:`ConsumerSettings` is one ``[[queues.consumers]]`` table of a wrangler config, validated
against the documented ranges (``max_batch_size`` 1-100, default 10; ``max_batch_timeout`` 0-60 s,
default 5; ``max_retries`` 0-100, default 3; ``retry_delay`` 0-43200 s; ``max_concurrency`` 1-250).

:class:`LocalMessageBatch` and :class:`LocalMessage` implement :class:`edgerag.ports.MessageBatch`
and :class:`edgerag.ports.Message`. They only *record* what the handler asked for; the dispatcher
turns that into outcomes with :meth:`LocalMessageBatch.outcomes` after the handler finished, which
is also when the edge applies them. The precedence rules follow the Queues docs and workerd:

- per message, the first of ``ack()``/``retry()`` wins; later calls are ignored (logged, as
  workerd logs them);
- ``ack()`` after ``retryAll()`` and ``retry()`` after ``ackAll()`` are ignored; whichever of
  ``ackAll()``/``retryAll()`` comes first wins;
- a message's own ``ack()``/``retry()`` beats the batch-level call, whenever the latter came;
- without any call, a message is acked if the handler returned and retried if it raised.

To support another per-message option, extend :class:`Outcome` and :meth:`LocalMessage.retry`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from edgerag.ports import Message

from edgerag_local.core.options import merge_options
from edgerag_local.queues.limits import MESSAGE_METADATA_INVALID, QueueLimits, check_delay

__all__ = ["ConsumerConfigError", "ConsumerSettings", "LocalMessage", "LocalMessageBatch", "Outcome"]

logger = logging.getLogger("edgerag_local.queues")

_DEFAULT_LIMITS = QueueLimits()
# wrangler's validator accepts these keys on a consumer table (workers-utils config/validation.ts).
_WRANGLER_KEYS = frozenset(
    {
        "queue",
        "type",
        "max_batch_size",
        "max_batch_timeout",
        "max_retries",
        "dead_letter_queue",
        "max_concurrency",
        "visibility_timeout_ms",
        "retry_delay",
    }
)


class ConsumerConfigError(ValueError):
    """A ``[[queues.consumers]]`` setting is missing its type or out of range; the message names the key."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ConsumerSettings:
    """How batches of one queue are delivered to its consumer (wrangler's names, Python types)."""

    max_batch_size: int = 10
    max_batch_timeout: float = 5.0
    max_retries: int = 3
    dead_letter_queue: str | None = None
    retry_delay: int = 0
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        self.check(_DEFAULT_LIMITS)

    def check(self, limits: QueueLimits) -> None:
        """Raise :class:`ConsumerConfigError` naming the first setting outside ``limits``."""
        _ranged("max_batch_size", self.max_batch_size, 1, limits.max_consumer_batch_size, integer=True)
        _ranged("max_batch_timeout", self.max_batch_timeout, 0, limits.max_batch_timeout_seconds)
        _ranged("max_retries", self.max_retries, 0, limits.max_retries, integer=True)
        _ranged("retry_delay", self.retry_delay, 0, limits.max_delay_seconds, integer=True)
        if self.max_concurrency is not None:
            _ranged("max_concurrency", self.max_concurrency, 1, limits.max_concurrency, integer=True)
        if self.dead_letter_queue is not None and (
            not isinstance(self.dead_letter_queue, str) or not self.dead_letter_queue
        ):
            raise ConsumerConfigError(
                '"dead_letter_queue" must be a queue name (a non-empty string), '
                f"got {self.dead_letter_queue!r}"
            )

    @classmethod
    def from_wrangler(cls, table: Mapping[str, Any]) -> ConsumerSettings:
        """Settings from one ``[[queues.consumers]]`` table; ``queue`` may be present or not.

        ``visibility_timeout_ms`` only applies to HTTP pull consumers and is accepted and ignored;
        ``type`` must be ``"worker"`` (the only kind wrangler configures).
        """
        if not isinstance(table, Mapping):
            raise ConsumerConfigError(f"queues.consumers entries must be tables, got {type(table).__name__}")
        unknown = sorted(set(table) - _WRANGLER_KEYS)
        if unknown:
            raise ConsumerConfigError(
                f"queues.consumers: unexpected field(s) {unknown}; accepted: {sorted(_WRANGLER_KEYS)}"
            )
        if "queue" in table and not isinstance(table["queue"], str):
            raise ConsumerConfigError(f'queues.consumers: "queue" must be a string, got {table["queue"]!r}')
        if table.get("type", "worker") != "worker":
            raise ConsumerConfigError(
                f'queues.consumers: "type" has an invalid value {table["type"]!r}; '
                'only "worker" consumers can be configured in a wrangler config'
            )
        values = {key: table[key] for key in table if key in cls.__dataclass_fields__}
        try:
            return cls(**values)
        except ConsumerConfigError as exc:
            queue = table.get("queue")
            where = f"queues.consumers (queue {queue!r})" if queue else "queues.consumers"
            raise ConsumerConfigError(f"{where}: {exc}") from exc

    @property
    def concurrency(self) -> int:
        """How many batches a dispatcher delivers at once; unset means one, the steady state of an
        autoscaling consumer whose backlog is small (the edge only scales out as the backlog grows)."""
        return 1 if self.max_concurrency is None else self.max_concurrency


def _ranged(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    numeric = _is_int(value) or (not integer and isinstance(value, float))
    if not numeric or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConsumerConfigError(f'"{name}" must be {kind} between {low:g} and {high:g}, got {value!r}')


@dataclass(frozen=True)
class Outcome:
    """What happens to one delivered message: acked, or retried after ``delay`` (``None``: the default)."""

    action: Literal["ack", "retry"]
    delay: int | None = None


class LocalMessageBatch:
    """The ``batch`` argument of a ``queue()`` handler (:class:`edgerag.ports.MessageBatch`)."""

    def __init__(
        self, queue: str, messages: Sequence[tuple[str, datetime, Any, int]], limits: QueueLimits
    ) -> None:
        self.queue = queue
        self._limits = limits
        self._acks: set[str] = set()
        self._retries: dict[str, int | None] = {}
        self._batch: Outcome | None = None
        self._closed = False
        self.messages: Sequence[Message] = tuple(
            LocalMessage(self, mid, timestamp, body, attempts) for mid, timestamp, body, attempts in messages
        )

    def __repr__(self) -> str:
        return f"LocalMessageBatch(queue={self.queue!r}, messages={len(self.messages)})"

    def _ignored(self, call: str) -> bool:
        if self._closed:
            logger.warning("%s was called after the queue handler finished; it has no effect", call)
            return True
        return False

    def ackAll(self) -> None:
        if self._ignored("ackAll()"):
            return
        if self._batch is not None and self._batch.action == "retry":
            logger.warning(
                "Received a call to ackAll() after retryAll() was already called. "
                "Calling ackAll() after calling retryAll() has no effect."
            )
            return
        self._batch = Outcome("ack")

    def retryAll(self, options: Mapping[str, Any] | None = None, *, delaySeconds: int | None = None) -> None:
        opts = merge_options(
            options, _given(delaySeconds=delaySeconds), allowed=("delaySeconds",), where="retryAll"
        )
        delay = self._delay(opts)
        if self._ignored("retryAll()"):
            return
        if self._batch is not None and self._batch.action == "ack":
            logger.warning(
                "Received a call to retryAll() after ackAll() was already called. "
                "Calling retryAll() after calling ackAll() has no effect."
            )
            return
        previous = self._batch.delay if self._batch is not None else None
        self._batch = Outcome("retry", previous if delay is None else delay)

    def _delay(self, opts: Mapping[str, Any]) -> int | None:
        if "delaySeconds" not in opts:
            return None
        return check_delay(opts["delaySeconds"], self._limits, code=MESSAGE_METADATA_INVALID)

    def _ack(self, message_id: str) -> None:
        if self._ignored("ack()") or (self._batch is not None and self._batch.action == "ack"):
            return
        if self._batch is not None:
            logger.warning(
                "Received a call to ack() on message %s after retryAll() was already called. "
                "Calling ack() on a message after calling retryAll() has no effect.",
                message_id,
            )
        elif message_id in self._retries:
            logger.warning(
                "Received a call to ack() on message %s after retry() was already called. "
                "Calling ack() on a message after calling retry() has no effect.",
                message_id,
            )
        else:
            self._acks.add(message_id)

    def _retry(self, message_id: str, delay: int | None) -> None:
        if self._ignored("retry()"):
            return
        if self._batch is not None and self._batch.action == "ack":
            logger.warning(
                "Received a call to retry() on message %s after ackAll() was already called. "
                "Calling retry() on a message after calling ackAll() has no effect.",
                message_id,
            )
        elif message_id in self._acks:
            logger.warning(
                "Received a call to retry() on message %s after ack() was already called. "
                "Calling retry() on a message after calling ack() has no effect.",
                message_id,
            )
        elif delay is not None or message_id not in self._retries:
            self._retries[message_id] = delay

    def outcomes(self, *, handler_raised: bool) -> dict[str, Outcome]:
        """Close the batch and decide every message's fate (see the module docstring)."""
        self._closed = True
        fallback = Outcome("retry") if handler_raised else Outcome("ack")
        decided: dict[str, Outcome] = {}
        for message in self.messages:
            if message.id in self._acks:
                decided[message.id] = Outcome("ack")
            elif message.id in self._retries:
                decided[message.id] = Outcome("retry", self._retries[message.id])
            else:
                decided[message.id] = self._batch or fallback
        return decided


class LocalMessage:
    """One message of a batch (:class:`edgerag.ports.Message`); ``attempts`` starts at 1."""

    def __init__(
        self, batch: LocalMessageBatch, id: str, timestamp: datetime, body: Any, attempts: int
    ) -> None:
        self._batch = batch
        self.id = id
        self.timestamp = timestamp
        self.body = body
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"LocalMessage(id={self.id!r}, attempts={self.attempts})"

    def ack(self) -> None:
        self._batch._ack(self.id)

    def retry(self, options: Mapping[str, Any] | None = None, *, delaySeconds: int | None = None) -> None:
        opts = merge_options(
            options, _given(delaySeconds=delaySeconds), allowed=("delaySeconds",), where="retry"
        )
        self._batch._retry(self.id, self._batch._delay(opts))


def _given(**kwargs: Any) -> dict[str, Any]:
    # Keyword options left at None were not passed: they must not mask the same option given in the
    # trailing options dict (merge_options lets keywords override the dict).
    return {k: v for k, v in kwargs.items() if v is not None}
