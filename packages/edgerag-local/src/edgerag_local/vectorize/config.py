"""What a local Vectorize index is (name, dimensions, metric, metadata indexes) and the limits it enforces.

:class:`VectorizeIndexConfig` mirrors ``wrangler vectorize create <name> --dimensions --metric`` plus the
``create-metadata-index`` calls made for it: at the edge these are fixed when the index is created and
cannot change afterwards, so the emulator refuses to open a persisted index whose dimensions or metric
differ from the config. Metadata indexes *can* be added later at the edge, and so they can here: a new one
covers only vectors written after it appeared (see ``vectorize_store``).

:class:`VectorizeLimits` holds every documented limit as a constant so tests can lower them
(``VectorizeLimits(max_vectors_per_write=3)``). To add a limit: add a field here with a comment naming
its source, enforce it where the input is validated, and pin it in ``tests/contract/test_vectorize.py``.

Sources: developers.cloudflare.com/vectorize/platform/limits, .../reference/client-api,
.../reference/metadata-filtering, and error texts reported from live indexes (noted per field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "MetadataIndexType",
    "Metric",
    "VectorizeIndexConfig",
    "VectorizeLimits",
    "check_config_against_limits",
]

Metric = Literal["cosine", "euclidean", "dot-product"]
MetadataIndexType = Literal["string", "number", "boolean"]

_METRICS: frozenset[str] = frozenset(get_args(Metric))
_INDEX_TYPES: frozenset[str] = frozenset(get_args(MetadataIndexType))


@dataclass(frozen=True)
class VectorizeLimits:
    """Vectorize V2 limits for a Workers binding. Lower them in tests; never raise them past the edge's."""

    max_dimensions: int = 1536
    max_index_name_bytes: int = 64
    max_id_bytes: int = 64  # live text: "id too long; max is 64 bytes, got N bytes" (code 40008)
    max_namespace_bytes: int = 64
    max_metadata_bytes: int = 10 * 1024  # "10KiB" of metadata per vector (compact JSON, UTF-8)
    max_vectors_per_write: int = 1000  # Workers binding; the HTTP API allows 5000
    # Live text: "too many ids in payload; max id count is 20" (code 40007). Not in the docs' table.
    max_ids_per_get: int = 20
    # Not documented for the binding; 1000 matches the write batch limit. Unconfirmed.
    max_ids_per_delete: int = 1000
    max_top_k: int = 100
    # The docs say 20 when returnValues=true or returnMetadata="all"; live indexes have been seen to
    # answer "max top K is 50" instead. The stricter documented value keeps code that passes here
    # passing at the edge.
    max_top_k_with_values_or_metadata: int = 20
    max_filter_bytes: int = 2048  # the filter's compact JSON must be *less than* this
    max_filter_key_chars: int = 512
    max_metadata_indexes: int = 10
    indexed_string_bytes: int = 64  # a string metadata index holds the first 64 bytes of each value
    max_namespaces: int = 50_000  # Workers Paid (1000 on Free)
    max_vectors: int = 5_000_000


def _freeze(indexes: Mapping[str, str]) -> Mapping[str, MetadataIndexType]:
    frozen: dict[str, MetadataIndexType] = {}
    for prop, kind in indexes.items():
        if not isinstance(prop, str) or not prop or any(not part for part in prop.split(".")):
            raise ValueError(f"metadata index property must be a non-empty dotted name, got {prop!r}")
        if '"' in prop or prop.startswith("$"):
            raise ValueError(f"metadata index property {prop!r} may not contain '\"' or start with '$'")
        if kind not in _INDEX_TYPES:
            raise ValueError(
                f"metadata index {prop!r} has type {kind!r}; expected one of {sorted(_INDEX_TYPES)}"
            )
        frozen[prop] = kind  # type: ignore[assignment]  # checked just above
    return MappingProxyType(frozen)


@dataclass(frozen=True)
class VectorizeIndexConfig:
    """One index: ``wrangler vectorize create`` arguments plus its metadata indexes (property -> type).

    Nested properties are written with dots (``"doc.kind"``), as in filters.
    """

    name: str
    dimensions: int
    metric: Metric
    metadata_indexes: Mapping[str, MetadataIndexType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Vectorize index name must be a non-empty string")
        if isinstance(self.dimensions, bool) or not isinstance(self.dimensions, int) or self.dimensions < 1:
            raise ValueError(f"dimensions must be a positive integer, got {self.dimensions!r}")
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {self.metric!r}")
        if not isinstance(self.metadata_indexes, Mapping):
            raise ValueError("metadata_indexes must be a mapping of property name to type")
        # A private read-only copy: the caller's dict cannot change the index behind its back.
        object.__setattr__(self, "metadata_indexes", _freeze(self.metadata_indexes))


def check_config_against_limits(config: VectorizeIndexConfig, limits: VectorizeLimits) -> None:
    """Reject a config that ``wrangler vectorize create`` / ``create-metadata-index`` would reject."""
    if len(config.name.encode("utf-8")) > limits.max_index_name_bytes:
        raise ValueError(
            f"Vectorize index name {config.name!r} is longer than {limits.max_index_name_bytes} bytes"
        )
    if config.dimensions > limits.max_dimensions:
        raise ValueError(
            f"index {config.name!r}: dimensions must be <= {limits.max_dimensions}, got {config.dimensions}"
        )
    if len(config.metadata_indexes) > limits.max_metadata_indexes:
        raise ValueError(
            f"index {config.name!r}: at most {limits.max_metadata_indexes} metadata indexes, "
            f"got {len(config.metadata_indexes)}"
        )
