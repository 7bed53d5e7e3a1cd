"""Push delivery for the local Queues emulator: lease batches from the broker, call the consumer, settle.

One :class:`QueueDispatcher` per ``[[queues.consumers]]`` entry. A batch is delivered when
``max_batch_size`` messages are waiting, or when the oldest waiting one has waited
``max_batch_timeout`` seconds (whichever comes first, as the Queues docs describe). After the handler
finishes, each message is acked or retried by the rules of :mod:`edgerag_local.queues.consumer`; a
retry makes it deliverable again after its delay (the call's ``delaySeconds``, else the consumer's
``retry_delay``). A message whose delivery fails on attempt ``max_retries + 1`` (``attempts`` counts
deliveries, starting at 1) moves to the ``dead_letter_queue`` as a new message there (same id,
timestamp and body, attempts starting again) or, without one, is dropped with a logged warning;
miniflare counts the same way.

Time comes from the broker's clock and waiting goes through an injectable ``sleep``, so tests drive
batch timeouts and retry delays without waiting. :meth:`QueueDispatcher.drain` delivers everything
deliverable now regardless of the batch timeout, which is what tests and ``LocalStack.drain_queues``
want. To add a delivery policy (e.g. per-queue ordering), change how :meth:`_deliver` builds
settlements; the broker applies whatever it is given atomically.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from edgerag.ports import MessageBatch

from edgerag_local.queues.broker import LocalQueueBroker, Settlement, StoredMessage
from edgerag_local.queues.codec import decode_body
from edgerag_local.queues.consumer import ConsumerSettings, LocalMessageBatch

__all__ = ["DispatchResult", "QueueDispatcher"]

logger = logging.getLogger("edgerag_local.queues")

Handler = Callable[[MessageBatch], Awaitable[object]]
_MIN_WAIT = 0.001  # seconds; keeps an idle loop from spinning when a due batch was taken by a peer


@dataclass(frozen=True)
class DispatchResult:
    """What one or more deliveries did; results add up with ``+``."""

    batches: int = 0
    delivered: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0

    def __add__(self, other: DispatchResult) -> DispatchResult:
        return DispatchResult(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class QueueDispatcher:
    """Delivers ``queue_name``'s messages in batches to ``handler`` (a ``queue()`` entry point)."""

    def __init__(
        self,
        broker: LocalQueueBroker,
        queue_name: str,
        settings: ConsumerSettings,
        handler: Handler,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        poll_interval: float = 0.1,
    ) -> None:
        settings.check(broker.limits)
        if settings.dead_letter_queue == queue_name:
            raise ValueError(f"queue {queue_name!r} cannot be its own dead_letter_queue")
        self._broker = broker
        self.queue_name = queue_name
        self.settings = settings
        self._handler = handler
        # Batch decisions use the broker's clock; a separate clock only changes how long we sleep.
        self._clock = broker.clock if clock is None else clock
        self._sleep = sleep
        self._poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"QueueDispatcher({self.queue_name!r})"

    # ------------------------------------------------------------------------------ delivering

    async def run_once(self) -> DispatchResult:
        """Deliver one batch if one is due now (full, or its oldest message waited the timeout)."""
        claimed = self._claim(force=False)
        return DispatchResult() if claimed is None else await self._deliver(*claimed)

    async def drain(self) -> DispatchResult:
        """Deliver batch after batch, ignoring the batch timeout, until nothing is deliverable now.

        Messages retried without a delay are delivered again within the same drain, so a message
        that keeps failing reaches its dead-letter queue (or is dropped) before this returns.
        """
        total = DispatchResult()
        while (claimed := self._claim(force=True)) is not None:
            total += await self._deliver(*claimed)
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver batches as they become due, up to ``max_concurrency`` at once, until ``stop`` is set.

        On stop, batches already being handled finish first; if this task is cancelled instead, they
        are cancelled and their messages put back for redelivery.
        """
        running: set[asyncio.Task[DispatchResult]] = set()
        try:
            while not stop.is_set():
                while len(running) < self.settings.concurrency:
                    claimed = self._claim(force=False)
                    if claimed is None:
                        break
                    running.add(asyncio.create_task(self._deliver(*claimed)))
                delay = (
                    self._poll_interval if len(running) >= self.settings.concurrency else self._idle_delay()
                )
                helpers = {asyncio.create_task(stop.wait()), asyncio.ensure_future(self._sleep(delay))}
                try:
                    done, _ = await asyncio.wait(helpers | running, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for helper in helpers:
                        helper.cancel()
                    await asyncio.gather(*helpers, return_exceptions=True)
                for task in done & running:
                    running.discard(task)
                    task.result()  # a broker failure is a bug: surface it
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        if running:
            await asyncio.gather(*running)

    def _claim(self, *, force: bool) -> tuple[str, list[StoredMessage]] | None:
        return self._broker.claim(
            self.queue_name,
            self.settings.max_batch_size,
            batch_timeout=self.settings.max_batch_timeout,
            force=force,
        )

    def _idle_delay(self) -> float:
        due = self._broker.next_due(
            self.queue_name, self.settings.max_batch_size, batch_timeout=self.settings.max_batch_timeout
        )
        if due is None:
            return self._poll_interval
        return min(self._poll_interval, max(_MIN_WAIT, due - self._clock()))

    async def _deliver(self, token: str, rows: list[StoredMessage]) -> DispatchResult:
        try:
            return await self._deliver_leased(token, rows)
        except BaseException:
            # Cancelled or interrupted before settling: put the messages back for redelivery. After a
            # settle this is a no-op, since the lease token no longer matches any row.
            self._broker.release(token)
            raise

    async def _deliver_leased(self, token: str, rows: list[StoredMessage]) -> DispatchResult:
        max_attempts = self.settings.max_retries + 1
        # Messages whose deliveries kept dying with their process have used up their attempts already.
        exhausted = [row for row in rows if row.attempts > max_attempts]
        live = [row for row in rows if row.attempts <= max_attempts]
        settlements = [self._give_up(row, max_attempts) for row in exhausted]
        if live:
            batch = LocalMessageBatch(
                self.queue_name,
                [
                    (row.id, _timestamp(row.sent_at), decode_body(row.content_type, row.data), row.attempts)
                    for row in live
                ],
                self._broker.limits,
            )
            raised = False
            try:
                await self._handler(batch)
            except Exception:
                raised = True
                logger.exception(
                    "queue handler for %r raised; unacknowledged messages will be retried", self.queue_name
                )
            outcomes = batch.outcomes(handler_raised=raised)
            for row in live:
                outcome = outcomes[row.id]
                if outcome.action == "ack":
                    settlements.append(Settlement(row.seq, "ack"))
                elif row.attempts >= max_attempts:
                    settlements.append(self._give_up(row, max_attempts))
                else:
                    delay = self.settings.retry_delay if outcome.delay is None else outcome.delay
                    settlements.append(Settlement(row.seq, "retry", delay=delay))
        applied = self._broker.settle(token, settlements)
        counts = dict.fromkeys(("ack", "retry", "dead_letter", "drop"), 0)
        for settlement in settlements:
            if settlement.seq in applied:
                counts[settlement.action] += 1
        logger.info("QUEUE %s %d/%d acked", self.queue_name, counts["ack"], len(rows))
        return DispatchResult(
            batches=1,
            delivered=len(live),
            acked=counts["ack"],
            retried=counts["retry"],
            dead_lettered=counts["dead_letter"],
            dropped=counts["drop"],
        )

    def _give_up(self, row: StoredMessage, max_attempts: int) -> Settlement:
        plural = "" if max_attempts == 1 else "s"
        target = self.settings.dead_letter_queue
        if target is not None:
            logger.warning(
                'Moving message "%s" on queue "%s" to dead letter queue "%s" after %d failed attempt%s',
                row.id,
                self.queue_name,
                target,
                max_attempts,
                plural,
            )
            return Settlement(row.seq, "dead_letter", target=target)
        logger.warning(
            'Dropped message "%s" on queue "%s" after %d failed attempt%s (no dead_letter_queue configured)',
            row.id,
            self.queue_name,
            max_attempts,
            plural,
        )
        return Settlement(row.seq, "drop")


def _timestamp(sent_at: float) -> datetime:
    # A JS Date (millisecond precision) as the SDK converts it: naive, in the edge's local time, UTC.
    return datetime.fromtimestamp(math.floor(sent_at * 1000) / 1000, tz=UTC).replace(tzinfo=None)
