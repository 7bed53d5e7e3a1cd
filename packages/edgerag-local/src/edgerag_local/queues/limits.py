"""Cloudflare Queues limits and the errors the local emulator raises when one is crossed.

Numbers come from the Queues "Limits" and "Batching, Retries and Delays" pages (1 KB = 1000 bytes):
a message is at most 128 KB serialised, a ``sendBatch`` at most 100 messages and 256 KB in total,
``delaySeconds`` (send and retry) and ``retry_delay`` at most 12 hours, a consumer batch at most 100
messages and 60 seconds of waiting, ``max_retries`` at most 100, at most 250 concurrent consumer
invocations. Tests lower them by passing ``QueueLimits(...)`` to the broker.

Producer-side violations are reported by the queue service, and with compatibility date
2026-03-12 or later (``queue_expose_error_codes``) workerd surfaces them as ``"<cause> (<code>)"``
using the codes of the Queues error-code reference (10202-10206). :func:`queue_error` builds that
shape; the cause text adds the numbers involved, worded like miniflare's validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from edgerag_local.queues.errors import QueueError

__all__ = [
    "BATCH_COUNT_OUT_OF_BOUNDS",
    "BATCH_DELAY_INVALID",
    "BATCH_SIZE_OUT_OF_BOUNDS",
    "MESSAGE_METADATA_INVALID",
    "MESSAGE_SIZE_OUT_OF_BOUNDS",
    "QueueLimits",
    "check_delay",
    "queue_error",
]

BATCH_DELAY_INVALID: Final = (10202, "Invalid batch delay")
MESSAGE_METADATA_INVALID: Final = (10203, "Invalid message metadata")
MESSAGE_SIZE_OUT_OF_BOUNDS: Final = (10204, "Message size out of bounds")
BATCH_SIZE_OUT_OF_BOUNDS: Final = (10205, "Batch size out of bounds")
BATCH_COUNT_OUT_OF_BOUNDS: Final = (10206, "Batch count out of bounds")


@dataclass(frozen=True)
class QueueLimits:
    """Every Queues limit the emulator enforces; all sizes in bytes, all times in seconds."""

    max_message_bytes: int = 128_000
    max_batch_messages: int = 100
    max_batch_bytes: int = 256_000
    max_delay_seconds: int = 43_200
    max_consumer_batch_size: int = 100
    max_batch_timeout_seconds: float = 60
    max_retries: int = 100
    max_concurrency: int = 250
    # How long a delivered batch stays leased to its dispatcher before another may take it: the
    # consumer's wall-clock limit (15 minutes). A crashed process's leases are released on the next
    # open instead (see LocalQueueBroker), so this only matters within one process.
    lease_seconds: float = 15 * 60


def queue_error(code: tuple[int, str], detail: str) -> QueueError:
    """A :class:`QueueError` shaped like workerd's ``"<cause> (<code>)"`` message."""
    number, cause = code
    return QueueError(f"{cause}: {detail} ({number})")


def check_delay(value: Any, limits: QueueLimits, *, code: tuple[int, str], name: str = "delaySeconds") -> int:
    """A delay in whole seconds: ``TypeError`` if not an integer, :class:`QueueError` if out of range."""
    if isinstance(value, float) and value.is_integer():
        # JS has one number type, so 5.0 and 5 are the same delay at the edge.
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer number of seconds, got {value!r}")
    if not 0 <= value <= limits.max_delay_seconds:
        raise queue_error(
            code,
            f"message delay {value} is invalid: {name} must be an integer between 0 and "
            f"{limits.max_delay_seconds}",
        )
    return value
