"""One namespace's vectors in memory: a float32 matrix whose rows a query scores in one product.

A :class:`NamespaceSlab` keeps the rows packed: ``matrix[:size]`` are the live vectors, ``ids[row]`` names
them, ``rows[id]`` finds them, ``norms[row]`` caches each vector's length (cosine and euclidean need it),
and one :class:`~edgerag_local.vectorize.columns.Column` per metadata index is aligned with the rows.
Capacity grows geometrically, so appends are amortised O(1); a delete moves the last row into the hole
("swap-delete"), so it is O(dimensions) and the rows stay packed. Row order therefore means nothing.

SQLite (``vectorize_store``) is the durable copy; slabs are rebuilt from it on open. To add per-row
state: give it an array here and keep it in step in :meth:`_grow`, :meth:`put`, :meth:`load` and
:meth:`remove`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgerag_local.vectorize.columns import Column, IndexedValue, StringDictionary
from edgerag_local.vectorize.config import MetadataIndexType

__all__ = ["NamespaceSlab"]

_MIN_CAPACITY = 16


class NamespaceSlab:
    """The vectors of one namespace (``None``: vectors written without a namespace)."""

    def __init__(
        self,
        namespace: str | None,
        dimensions: int,
        index_types: Mapping[str, MetadataIndexType],
        strings: Mapping[str, StringDictionary],
        capacity: int = _MIN_CAPACITY,
    ) -> None:
        self.namespace = namespace
        self.size = 0
        capacity = max(capacity, _MIN_CAPACITY)
        self.matrix: npt.NDArray[np.float32] = np.zeros((capacity, dimensions), dtype=np.float32)
        self.norms: npt.NDArray[np.float32] = np.zeros(capacity, dtype=np.float32)
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.columns: dict[str, Column] = {
            prop: Column(kind, capacity, strings.get(prop)) for prop, kind in index_types.items()
        }

    def load(
        self, vector_id: str, values: npt.NDArray[np.float32], indexed: Sequence[IndexedValue | None]
    ) -> None:
        """Append a row read from disk; ``indexed`` follows ``columns``' order. Call :meth:`loaded` after."""
        row = self.size
        if row == self.matrix.shape[0]:
            self._grow()
        self.matrix[row] = values
        for column, value in zip(self.columns.values(), indexed, strict=True):
            column.set(row, value)
        self.ids.append(vector_id)
        self.rows[vector_id] = row
        self.size += 1

    def loaded(self) -> None:
        """Compute the norms of all rows at once after :meth:`load` calls."""
        rows = self.matrix[: self.size]
        # float32 is enough: norms only rank candidates, which are then re-scored in float64.
        self.norms[: self.size] = np.sqrt(np.einsum("ij,ij->i", rows, rows))

    def __len__(self) -> int:
        return self.size

    def _grow(self) -> None:
        capacity = self.matrix.shape[0] * 2
        matrix = np.zeros((capacity, self.matrix.shape[1]), dtype=np.float32)
        matrix[: self.size] = self.matrix[: self.size]
        norms = np.zeros(capacity, dtype=np.float32)
        norms[: self.size] = self.norms[: self.size]
        self.matrix, self.norms = matrix, norms
        for column in self.columns.values():
            column.resize(capacity)

    def put(
        self, vector_id: str, values: npt.NDArray[np.float32], indexed: Mapping[str, IndexedValue | None]
    ) -> None:
        """Add ``vector_id`` or overwrite its row in place."""
        row = self.rows.get(vector_id)
        if row is None:
            if self.size == self.matrix.shape[0]:
                self._grow()
            row = self.size
            self.size += 1
            self.ids.append(vector_id)
            self.rows[vector_id] = row
        self.matrix[row] = values
        self.norms[row] = np.linalg.norm(values.astype(np.float64))
        for prop, column in self.columns.items():
            column.set(row, indexed.get(prop))

    def remove(self, vector_id: str) -> bool:
        """Drop ``vector_id`` (False if it is not here), filling its row with the last one."""
        row = self.rows.pop(vector_id, None)
        if row is None:
            return False
        last = self.size - 1
        if row != last:
            moved = self.ids[last]
            self.matrix[row] = self.matrix[last]
            self.norms[row] = self.norms[last]
            for column in self.columns.values():
                column.move(last, row)
            self.ids[row] = moved
            self.rows[moved] = row
        self.ids.pop()
        self.size = last
        return True

    def values_of(self, row: int) -> list[float]:
        """A row's values as Python floats (float32 widened, e.g. 0.1 -> 0.10000000149011612)."""
        return [float(v) for v in self.matrix[row]]

    def indexed_metadata(self, row: int) -> dict[str, Any]:
        """The row's indexed metadata, nested again by the dots in the property names."""
        out: dict[str, Any] = {}
        for prop, column in self.columns.items():
            value = column.get(row)
            if value is None:
                continue
            node = out
            *parents, leaf = prop.split(".")
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):  # "a" and "a.b" both indexed: keep the first seen
                    break
                node = child
            else:
                node.setdefault(leaf, value)
        return out

    @property
    def nbytes(self) -> int:
        columns = sum(column.nbytes for column in self.columns.values())
        return int(self.matrix.nbytes + self.norms.nbytes + columns)
