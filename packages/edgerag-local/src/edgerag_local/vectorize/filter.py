"""Vectorize metadata filters: validated once per query, then evaluated as numpy masks over a namespace.

Accepted (developers.cloudflare.com/vectorize/reference/metadata-filtering):

* ``{"field": value}`` is ``{"field": {"$eq": value}}``; several fields are an implicit AND (no OR).
* Operators ``$eq $ne`` (a string, number, boolean or null), ``$in $nin`` (a list of those),
  ``$lt $lte $gt $gte`` (a string or number; strings compare lexicographically). On one field either a
  single equality operator, or at most one upper bound (``$lt``/``$lte``) with at most one lower bound
  (``$gt``/``$gte``); other combinations are refused, as at the edge.
* Keys: non-empty, at most 512 characters, no ``"``, not starting with ``$``; dots address nested
  properties (``"doc.kind"``). The filter's compact JSON must be shorter than 2048 bytes.

Decisions where the docs are silent (the edge behaviour could not be confirmed):

* Filtering on a property that has **no metadata index** raises an error here. At the edge such a
  filter cannot match anything through an index, so the query quietly returns fewer or no results;
  failing loudly locally surfaces the missing ``create-metadata-index`` before deployment.
* A vector that has no indexed value for the field (property absent, of another type, or written
  before the metadata index existed) does not satisfy ``$eq``/``$in``/ranges and *does* satisfy
  ``$ne``/``$nin``; ``$eq: null`` matches exactly those vectors and ``$ne: null`` the others.
* A filter value of another type than the index (``"3"`` on a number index) matches no vector.
* String values are compared on their first 64 bytes, as the index stores them.

To add an operator: add it to the operator sets, validate its operand in :func:`_check_operand`, and
evaluate it in :meth:`CompiledFilter._condition_mask`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgerag_local.core.errors import RpcSerializationError
from edgerag_local.vectorize.columns import Column, truncate_utf8
from edgerag_local.vectorize.config import MetadataIndexType, VectorizeLimits
from edgerag_local.vectorize.input import compact_json, vectorize_error
from edgerag_local.vectorize.slab import NamespaceSlab

__all__ = ["CompiledFilter", "compile_filter"]

_EQUALITY = frozenset({"$eq", "$ne", "$in", "$nin"})
_UPPER = frozenset({"$lt", "$lte"})
_LOWER = frozenset({"$gt", "$gte"})
_OPERATORS = _EQUALITY | _UPPER | _LOWER

Mask = npt.NDArray[np.bool_]


def _error(reason: str) -> Exception:
    return vectorize_error("QUERY", f"invalid filter: {reason}")


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return bool(np.isfinite(value))
    return isinstance(value, (str, int, bool))


def _check_operand(field: str, op: str, operand: Any) -> Any:
    if isinstance(operand, tuple):
        raise RpcSerializationError(f"filter {field!r} {op}: a tuple cannot be sent to a binding; use a list")
    if op in ("$eq", "$ne"):
        if operand is not None and not _is_scalar(operand):
            raise _error(f"{field!r} {op} takes a string, number, boolean or null, got {operand!r}")
        return operand
    if op in ("$in", "$nin"):
        if not isinstance(operand, list) or not all(v is None or _is_scalar(v) for v in operand):
            raise _error(f"{field!r} {op} takes a list of strings, numbers, booleans or nulls")
        return list(operand)
    if isinstance(operand, bool) or not (isinstance(operand, str) or _is_scalar(operand)):
        raise _error(f"{field!r} {op} takes a string or a number, got {operand!r}")
    return operand


def _check_key(field: Any, limits: VectorizeLimits) -> str:
    if not isinstance(field, str) or not field:
        raise _error(f"keys must be non-empty strings, got {field!r}")
    if len(field) > limits.max_filter_key_chars:
        raise _error(f"key {field[:32]!r}... is longer than {limits.max_filter_key_chars} characters")
    if '"' in field or field.startswith("$") or any(not part for part in field.split(".")):
        raise _error(f"key {field!r} may not contain '\"', start with '$', or have an empty '.' segment")
    return field


def _check_combination(field: str, ops: list[str]) -> None:
    if not ops:
        raise _error(f"{field!r} has an empty operator object")
    unknown = [op for op in ops if op not in _OPERATORS]
    if unknown:
        raise _error(f"{field!r} uses unsupported operator(s) {unknown}; supported: {sorted(_OPERATORS)}")
    if any(op in _EQUALITY for op in ops):
        if len(ops) > 1:
            raise _error(f"{field!r} combines {sorted(ops)}; an equality operator must be used alone")
        return
    if sum(op in _UPPER for op in ops) > 1 or sum(op in _LOWER for op in ops) > 1:
        raise _error(f"{field!r} combines {sorted(ops)}; use at most one upper and one lower bound")


@dataclass(frozen=True, slots=True)
class _Condition:
    field: str
    op: str
    operand: Any


@dataclass(frozen=True)
class CompiledFilter:
    """A validated filter: an AND of single-operator conditions on indexed properties."""

    conditions: tuple[_Condition, ...]
    string_bytes: int

    def mask(self, slab: NamespaceSlab) -> Mask:
        """Which of ``slab``'s rows satisfy every condition."""
        result = np.ones(slab.size, dtype=np.bool_)
        for condition in self.conditions:
            result &= self._condition_mask(slab.columns[condition.field], slab.size, condition)
        return result

    def _equal(self, column: Column, n: int, value: Any) -> Mask:
        present = column.present[:n]
        if value is None:
            return ~present
        data = column.data[:n]
        if column.kind == "string":
            if not isinstance(value, str):
                return np.zeros(n, dtype=np.bool_)
            assert column.strings is not None
            code = column.strings.lookup(truncate_utf8(value, self.string_bytes))
            return present & (data == code) if code >= 0 else np.zeros(n, dtype=np.bool_)
        if column.kind == "boolean":
            if not isinstance(value, bool):
                return np.zeros(n, dtype=np.bool_)
            same: Mask = present & np.equal(data, value)
            return same
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return np.zeros(n, dtype=np.bool_)
        equal: Mask = present & np.equal(data, float(value))
        return equal

    def _any_of(self, column: Column, n: int, values: list[Any]) -> Mask:
        present = column.present[:n]
        result = ~present if any(v is None for v in values) else np.zeros(n, dtype=np.bool_)
        keys: list[Any] = []
        for value in values:
            if value is None:
                continue
            if column.kind == "string" and isinstance(value, str):
                assert column.strings is not None
                code = column.strings.lookup(truncate_utf8(value, self.string_bytes))
                if code >= 0:
                    keys.append(code)
            elif column.kind == "boolean" and isinstance(value, bool):
                keys.append(value)
            elif column.kind == "number" and not isinstance(value, (bool, str)):
                keys.append(float(value))
        if keys:
            result |= present & np.isin(column.data[:n], np.asarray(keys, dtype=column.data.dtype))
        return result

    def _range(self, column: Column, n: int, op: str, bound: Any) -> Mask:
        present = column.present[:n]
        if column.kind == "number" and not isinstance(bound, str):
            data: np.ndarray[Any, Any] = column.data[:n]
            limit: Any = float(bound)
        elif column.kind == "string" and isinstance(bound, str):
            assert column.strings is not None
            ranks, ordered = column.strings.ranks()
            data = ranks[column.data[:n]]
            # Map the bound to rank space: a string's position among all indexed strings.
            side: Literal["left", "right"] = "right" if op in ("$gt", "$lte") else "left"
            probe = np.array([truncate_utf8(bound, self.string_bytes)], dtype=np.str_)
            limit = int(np.searchsorted(ordered, probe, side=side)[0])
            op = {"$gt": "$gte", "$lte": "$lt"}.get(op, op)
        else:
            return np.zeros(n, dtype=np.bool_)
        compare = {"$lt": np.less, "$lte": np.less_equal, "$gt": np.greater, "$gte": np.greater_equal}[op]
        result: Mask = present & compare(data, limit)
        return result

    def _condition_mask(self, column: Column, n: int, condition: _Condition) -> Mask:
        op, operand = condition.op, condition.operand
        if op == "$eq":
            return self._equal(column, n, operand)
        if op == "$ne":
            return ~self._equal(column, n, operand)
        if op == "$in":
            return self._any_of(column, n, operand)
        if op == "$nin":
            return ~self._any_of(column, n, operand)
        return self._range(column, n, op, operand)


def compile_filter(
    raw: Any, index_types: Mapping[str, MetadataIndexType], limits: VectorizeLimits
) -> CompiledFilter:
    """Validate a query's ``filter`` option against the index's metadata indexes."""
    if isinstance(raw, tuple):
        raise RpcSerializationError("filter: a tuple cannot be sent to a binding")
    if not isinstance(raw, Mapping) or not raw:
        raise _error("filter must be a non-empty object")
    try:
        size = len(compact_json(raw).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise _error(f"filter is not JSON: {exc}") from exc
    if size >= limits.max_filter_bytes:
        raise _error(f"compact JSON must be less than {limits.max_filter_bytes} bytes, got {size} bytes")
    conditions: list[_Condition] = []
    for key, spec in raw.items():
        field = _check_key(key, limits)
        ops: dict[str, Any] = dict(spec) if isinstance(spec, Mapping) else {"$eq": spec}
        _check_combination(field, list(ops))
        if field not in index_types:
            raise _error(
                f"property {field!r} has no metadata index (indexed: {sorted(index_types)}). At the edge "
                "this filter would silently match nothing; create the index with "
                f"`wrangler vectorize create-metadata-index <index> --property-name={field} --type=...` "
                "and declare it in the index config"
            )
        for op, operand in ops.items():
            conditions.append(_Condition(field, op, _check_operand(field, op, operand)))
    return CompiledFilter(tuple(conditions), limits.indexed_string_bytes)
