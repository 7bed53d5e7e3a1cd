"""The local emulator of a Workers Analytics Engine dataset (``[[analytics_engine_datasets]]``).

``env.METRICS.writeDataPoint({"blobs": [...], "doubles": [...], "indexes": [...]})`` returns None
and is not awaited, as at the edge. The point is checked against :mod:`.limits` the way workerd
checks it (blob count, cumulative blob bytes, double count, index count and size, value types) and a
refused point raises :class:`~.errors.AnalyticsEngineError` (a ``TypeError``) naming the limit.
Accepted points land in the dataset's :class:`AnalyticsStore`, shared by every worker bound to the
same dataset (as the edge has one dataset per name), with the time of the write.

Storage is in memory: the store keeps the most recent points for inspection and hands every point
to its subscribers as it is written (the local ``/metrics`` aggregates them into counters), so a
restart of the local stack resets the counters, as a process restart resets a Prometheus client's.
The per-invocation cap (250 points) is not enforced here: the emulator cannot tell invocations
apart; the workers write one point per unit of work (:mod:`edgerag.observability.metrics`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgerag_local.analytics.errors import AnalyticsEngineError
from edgerag_local.analytics.limits import DEFAULT_LIMITS, AnalyticsEngineLimits

__all__ = ["AnalyticsStore", "DataPoint", "LocalAnalyticsEngineDataset"]

_PREFIX = "writeDataPoint(): "


@dataclass(frozen=True)
class DataPoint:
    dataset: str
    timestamp: float
    blobs: tuple[str | bytes | None, ...]
    doubles: tuple[float, ...]
    index: str | bytes | None

    def as_dict(self) -> dict[str, Any]:
        """The point as it was written (``blobs``, ``doubles``, ``indexes``)."""
        return {
            "blobs": list(self.blobs),
            "doubles": list(self.doubles),
            "indexes": [] if self.index is None else [self.index],
        }


class AnalyticsStore:
    """The points of one dataset: the latest ``keep`` for reading back, every one to subscribers.

    Thread-safe: the serving loop and the queue consumers' threads write concurrently.
    """

    def __init__(self, name: str, *, keep: int = 10_000, clock: Callable[[], float] | None = None) -> None:
        self.name = name
        self._points: deque[DataPoint] = deque(maxlen=keep)
        self._subscribers: list[Callable[[DataPoint], None]] = []
        self._lock = threading.Lock()
        self._clock = clock or time.time
        self.written = 0

    def add(self, blobs: Sequence[Any], doubles: Sequence[float], index: Any) -> DataPoint:
        point = DataPoint(self.name, self._clock(), tuple(blobs), tuple(doubles), index)
        with self._lock:
            self._points.append(point)
            self.written += 1
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(point)
        return point

    def points(self) -> list[DataPoint]:
        with self._lock:
            return list(self._points)

    def subscribe(self, subscriber: Callable[[DataPoint], None]) -> None:
        with self._lock:
            self._subscribers.append(subscriber)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, bytes) else len(str(value).encode("utf-8"))


class LocalAnalyticsEngineDataset:
    """``env.<BINDING>`` for one ``[[analytics_engine_datasets]]`` entry."""

    def __init__(self, store: AnalyticsStore, limits: AnalyticsEngineLimits = DEFAULT_LIMITS) -> None:
        self._store = store
        self._limits = limits

    @property
    def dataset(self) -> str:
        return self._store.name

    def writeDataPoint(self, point: Mapping[str, Any] | None = None) -> None:
        if point is None:
            point = {}
        if not isinstance(point, Mapping):
            raise AnalyticsEngineError(f"{_PREFIX}the data point must be an object")
        limits = self._limits
        blobs = self._sequence(point, "blobs")
        doubles = self._sequence(point, "doubles")
        indexes = self._sequence(point, "indexes")
        if len(blobs) > limits.max_blobs:
            raise AnalyticsEngineError(f"{_PREFIX}Maximum of {limits.max_blobs} blobs supported.")
        total = 0
        for blob in blobs:
            if blob is not None and not isinstance(blob, (str, bytes)):
                raise AnalyticsEngineError(f"{_PREFIX}blobs must be strings, ArrayBuffers or null")
            total += 0 if blob is None else _size(blob)
            if total > limits.max_blob_bytes:
                raise AnalyticsEngineError(
                    f"{_PREFIX}Cumulative size of blobs exceeds {limits.max_blob_bytes} bytes)."
                )
        if len(doubles) > limits.max_doubles:
            raise AnalyticsEngineError(f"{_PREFIX}Maximum of {limits.max_doubles} doubles supported.")
        values: list[float] = []
        for double in doubles:
            if isinstance(double, bool) or not isinstance(double, (int, float)):
                raise AnalyticsEngineError(f"{_PREFIX}doubles must be numbers")
            values.append(float(double))
        if len(indexes) > limits.max_indexes:
            raise AnalyticsEngineError(f"{_PREFIX}Maximum of {limits.max_indexes} indexes supported.")
        index = indexes[0] if indexes else None
        if index is not None:
            if not isinstance(index, (str, bytes)):
                raise AnalyticsEngineError(f"{_PREFIX}indexes must be strings, ArrayBuffers or null")
            if _size(index) > limits.max_index_bytes:
                raise AnalyticsEngineError(
                    f"{_PREFIX}Size of indexes[0] exceeds {limits.max_index_bytes} bytes)."
                )
        self._store.add(blobs, values, index)

    @staticmethod
    def _sequence(point: Mapping[str, Any], key: str) -> list[Any]:
        value = point.get(key)
        if value is None:
            return []
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise AnalyticsEngineError(f"{_PREFIX}{key} must be an array")
        return list(value)
