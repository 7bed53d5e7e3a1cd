"""The error a refused ``writeDataPoint`` raises: a ``TypeError``, as workerd's ``JSG_REQUIRE(...,
TypeError, ...)`` checks surface in Python, with workerd's wording ("Maximum of 20 blobs supported.")."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["AnalyticsEngineError"]


class AnalyticsEngineError(BindingError, TypeError):
    """A data point the dataset refuses (too many blobs/doubles/indexes, too large, wrong types)."""
