"""The local Workers Analytics Engine (``[[analytics_engine_datasets]]``) and the local ``/metrics``.

- :mod:`.binding`: the dataset binding (``writeDataPoint``) and its store; :mod:`.limits`: the
  documented limits; :mod:`.errors`: refused points; :mod:`.prometheus`: the points as Prometheus
  counters for ``GET /metrics`` on the local host.
"""

from __future__ import annotations

from .binding import AnalyticsStore, DataPoint, LocalAnalyticsEngineDataset
from .errors import AnalyticsEngineError
from .limits import DEFAULT_LIMITS, AnalyticsEngineLimits
from .prometheus import CONTENT_TYPE, MetricsAggregator

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_LIMITS",
    "AnalyticsEngineError",
    "AnalyticsEngineLimits",
    "AnalyticsStore",
    "DataPoint",
    "LocalAnalyticsEngineDataset",
    "MetricsAggregator",
]
