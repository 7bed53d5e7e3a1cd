"""Validation of what worker code hands the Vectorize binding: vectors, query vectors, id lists.

Everything a write or query would be refused for at the edge is refused here first, with the edge's
error shape ``VECTOR_<OP>_ERROR (code = N): <reason>``. Where Cloudflare's wording or code is known from
live error reports it is used verbatim (codes 40006, 40007, 40008, 40012); where it is not, the message
keeps the shape and omits the code rather than inventing one.

Values that the Python Workers SDK could not even send (a ``tuple``, which its RPC conversion rejects
with ``TypeError``; a byte buffer, which would arrive as integers) raise
:class:`~edgerag_local.service.errors.RpcSerializationError` / ``TypeError`` before any limit is checked.

To add a check: add it to the function for that input and a contract test that provokes it.
"""

from __future__ import annotations

import array
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgerag_local.core.errors import RpcSerializationError
from edgerag_local.vectorize.config import VectorizeLimits
from edgerag_local.vectorize.errors import VectorizeError

__all__ = [
    "PreparedVector",
    "check_id_list",
    "check_namespace",
    "compact_json",
    "prepare_vectors",
    "query_vector",
    "vectorize_error",
]

_VECTOR_KEYS = frozenset({"id", "values", "namespace", "metadata"})
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def vectorize_error(op: str, reason: str, code: int | None = None) -> VectorizeError:
    """An error worded like the binding's: ``VECTOR_QUERY_ERROR (code = 40006): <reason>``."""
    shown = f" (code = {code})" if code is not None else ""
    return VectorizeError(f"VECTOR_{op}_ERROR{shown}: {reason}")


@dataclass(frozen=True, slots=True)
class PreparedVector:
    """A validated vector: float32 values and metadata already normalised to what the edge stores."""

    id: str
    namespace: str | None
    values: npt.NDArray[np.float32]
    metadata: dict[str, Any] | None
    metadata_json: str | None


def compact_json(value: Any) -> str:
    """JSON as JS ``JSON.stringify`` writes it (no spaces, UTF-8 kept); used for size limits."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _reject_unsendable(value: Any, where: str) -> None:
    if isinstance(value, tuple):
        raise RpcSerializationError(f"{where}: a tuple cannot be sent to a binding; use a list")
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{where}: bytes are not a vector; pass a list of floats or a float32 buffer")


def _as_float_array(values: Any, where: str) -> npt.NDArray[np.float64] | None:
    """Values as float64, or None when they are not a flat sequence of numbers."""
    _reject_unsendable(values, where)
    if isinstance(values, (memoryview, array.array)):
        view = memoryview(values)
        # Pyodide hands a buffer over as the matching TypedArray; only float formats are vectors.
        if view.format not in ("f", "d", "<f", "<d", "=f", "=d"):
            raise TypeError(f"{where}: a buffer of format {view.format!r} is not a float32/float64 vector")
        arr: np.ndarray[Any, Any] = np.asarray(view)
    elif isinstance(values, np.ndarray):
        arr = values
    elif isinstance(values, (str, Mapping)) or not isinstance(values, Sequence):
        return None
    else:
        try:
            arr = np.asarray(values)
        except ValueError:  # ragged nesting
            return None
    if arr.ndim != 1 or arr.dtype.kind not in "fiu":
        return None
    return arr.astype(np.float64, copy=False)


def _to_float32(arr: npt.NDArray[np.float64]) -> npt.NDArray[np.float32] | None:
    # Vectorize stores float32, so a float64 beyond float32's range would become Infinity.
    if not np.isfinite(arr).all() or (arr.size and np.abs(arr).max() > _FLOAT32_MAX):
        return None
    return arr.astype(np.float32)


def query_vector(vector: Any, dimensions: int) -> npt.NDArray[np.float32]:
    """A query vector as float32, or the edge's 40006 error."""
    arr = _as_float_array(vector, "Vectorize.query")
    if arr is None:
        raise vectorize_error("QUERY", "invalid query vector, expected an array of numbers", 40006)
    if arr.shape[0] != dimensions:
        raise vectorize_error(
            "QUERY",
            f"invalid query vector, expected {dimensions} dimensions, and got {arr.shape[0]} dimensions",
            40006,
        )
    out = _to_float32(arr)
    if out is None:
        raise vectorize_error("QUERY", "invalid query vector, values must be finite numbers", 40006)
    return out


def check_namespace(namespace: Any, op: str, limits: VectorizeLimits) -> str | None:
    if namespace is None:
        return None
    if not isinstance(namespace, str) or not namespace:
        # An empty namespace would read as "no namespace" and widen a query to the whole index.
        raise vectorize_error(op, f"namespace must be a non-empty string, got {namespace!r}")
    size = len(namespace.encode("utf-8"))
    if size > limits.max_namespace_bytes:
        raise vectorize_error(
            op, f"namespace too long; max is {limits.max_namespace_bytes} bytes, got {size} bytes"
        )
    return namespace


def _check_id(vector_id: Any, op: str, limits: VectorizeLimits) -> str:
    if not isinstance(vector_id, str) or not vector_id:
        raise vectorize_error(op, f"vector id must be a non-empty string, got {vector_id!r}")
    size = len(vector_id.encode("utf-8"))
    if size > limits.max_id_bytes:
        raise vectorize_error(op, f"id too long; max is {limits.max_id_bytes} bytes, got {size} bytes", 40008)
    return vector_id


def check_id_list(ids: Any, op: str, limit: int, limits: VectorizeLimits) -> list[str]:
    """Ids for getByIds/deleteByIds: a list of valid ids, at most ``limit`` of them."""
    _reject_unsendable(ids, f"Vectorize {op.lower()}")
    if isinstance(ids, (str, Mapping)) or not isinstance(ids, Sequence):
        raise TypeError(f"Vectorize ids must be a list of strings, got {type(ids).__name__}")
    if len(ids) > limit:
        raise vectorize_error(op, f"too many ids in payload; max id count is {limit}", 40007)
    return [_check_id(i, op, limits) for i in ids]


def _js_normalised(value: Any, where: str, op: str) -> Any:
    """Metadata as JSON-through-JS would return it; rejects what it could not carry."""
    _reject_unsendable(value, where)
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise vectorize_error(op, f"{where}: metadata numbers must be finite, got {value!r}")
        # JS has one number type: 3.0 comes back as 3.
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, list):
        return [_js_normalised(v, f"{where}[{i}]", op) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key or "." in key or '"' in key or key.startswith("$"):
                raise vectorize_error(
                    op,
                    f"{where}: invalid metadata key {key!r}; keys cannot be empty, contain '.' or '\"', "
                    "or start with '$'",
                )
            out[key] = _js_normalised(item, f"{where}.{key}", op)
        return out
    raise vectorize_error(op, f"{where}: unsupported metadata value of type {type(value).__name__}")


def _prepare_one(raw: Any, op: str, dimensions: int, limits: VectorizeLimits) -> PreparedVector:
    if not isinstance(raw, Mapping):
        raise TypeError(f"each vector must be an object with id and values, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _VECTOR_KEYS)
    if unknown:
        # The service would ignore them; locally a typo such as "metdata" fails loudly.
        raise vectorize_error(op, f"unknown vector field(s) {unknown}; accepted: {sorted(_VECTOR_KEYS)}")
    if "values" not in raw:
        raise vectorize_error(op, f"vector {raw.get('id')!r} has no values")
    vector_id = _check_id(raw.get("id"), op, limits)
    arr = _as_float_array(raw["values"], f"vector {vector_id!r} values")
    got = "an invalid value" if arr is None else f"{arr.shape[0]} dimensions"
    if arr is None or arr.shape[0] != dimensions:
        raise vectorize_error(
            op, f'invalid vector for id="{vector_id}", expected {dimensions} dimensions, and got {got}', 40012
        )
    values = _to_float32(arr)
    if values is None:
        raise vectorize_error(op, f'invalid vector for id="{vector_id}", values must be finite numbers')
    namespace = check_namespace(raw.get("namespace"), op, limits)
    metadata: dict[str, Any] | None = None
    metadata_json: str | None = None
    if raw.get("metadata") is not None:
        if not isinstance(raw["metadata"], Mapping):
            raise vectorize_error(op, f'metadata for id="{vector_id}" must be an object')
        metadata = _js_normalised(raw["metadata"], "metadata", op)
        metadata_json = compact_json(metadata)
        size = len(metadata_json.encode("utf-8"))
        if size > limits.max_metadata_bytes:
            raise vectorize_error(
                op,
                f'metadata too large for id="{vector_id}"; max is {limits.max_metadata_bytes} bytes, '
                f"got {size} bytes",
            )
    return PreparedVector(vector_id, namespace, values, metadata, metadata_json)


def prepare_vectors(
    vectors: Any, op: str, dimensions: int, limits: VectorizeLimits
) -> list[PreparedVector]:
    """Validate a write batch (``op`` is ``INSERT`` or ``UPSERT``); order and duplicates are kept."""
    _reject_unsendable(vectors, f"Vectorize {op.lower()}")
    if isinstance(vectors, (str, Mapping)) or not isinstance(vectors, Sequence):
        raise TypeError(f"Vectorize {op.lower()} takes a list of vectors, got {type(vectors).__name__}")
    if not vectors:
        raise vectorize_error(op, "no vectors in request")
    if len(vectors) > limits.max_vectors_per_write:
        raise vectorize_error(
            op,
            f"too many vectors in request; max is {limits.max_vectors_per_write} per call, "
            f"got {len(vectors)}",
        )
    return [_prepare_one(raw, op, dimensions, limits) for raw in vectors]
