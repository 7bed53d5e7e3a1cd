"""The local Vectorize binding.

- :mod:`.binding`: the ``VectorizeIndex`` binding; :mod:`.config`: index configuration;
- :mod:`.input`: vector validation; :mod:`.store`, :mod:`.columns`, :mod:`.slab`: storage;
- :mod:`.filter`: metadata filters and metadata indexes; :mod:`.search`: queries;
- :mod:`.errors`: ``VECTOR_<OP>_ERROR`` messages.
"""

from __future__ import annotations

from .binding import (
    LocalVectorizeIndex,
    MetadataIndexType,
    Metric,
    VectorizeIndexConfig,
    VectorizeLimits,
)
from .errors import (
    VectorizeError,
)

__all__ = [
    "LocalVectorizeIndex",
    "MetadataIndexType",
    "Metric",
    "VectorizeError",
    "VectorizeIndexConfig",
    "VectorizeLimits",
]
