"""Workers Analytics Engine's documented limits, per ``writeDataPoint`` call.

From Cloudflare's limits page (updated April 2026) and workerd's ``analytics-engine-impl.h``: at most
20 blobs, 20 doubles and one index per data point; an index of at most 96 bytes; the blobs of one
point together at most 16 KB (workerd's own check was 5,120 bytes before the June 2025 increase —
lower :attr:`AnalyticsEngineLimits.max_blob_bytes` to test against that); at most 250 data points per
Worker invocation. Tests may lower any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "AnalyticsEngineLimits"]


@dataclass(frozen=True)
class AnalyticsEngineLimits:
    max_blobs: int = 20
    max_doubles: int = 20
    max_indexes: int = 1
    max_index_bytes: int = 96
    max_blob_bytes: int = 16 * 1024
    max_points_per_invocation: int = 250


DEFAULT_LIMITS = AnalyticsEngineLimits()
