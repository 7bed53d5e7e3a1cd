"""Metadata indexes as numpy columns, so a filter is a few vectorised comparisons instead of a loop.

Vectorize keeps one reverse index per metadata index (property -> values -> vector ids). Locally each
namespace's vectors sit in the rows of a matrix (``vectorize_slab``), and every metadata index is a
:class:`Column` aligned with those rows: a ``present`` mask plus the indexed value (float64 for
``number``, bool for ``boolean``, an int32 code into a shared :class:`StringDictionary` for ``string``).

What counts as indexed follows the edge: a value is indexed only when its type matches the index type
(a ``True`` is not a number, ``"3"`` is not a number), lists and objects are not indexed, and a string
index holds only the first 64 bytes of the value, cut on a UTF-8 character boundary.

To support a new index type: add its storage to :class:`Column`, its extraction to
:func:`indexed_value`, and its comparisons to ``vectorize_filter``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from edgerag_local.vectorize.config import MetadataIndexType

__all__ = ["Column", "IndexedValue", "StringDictionary", "indexed_from_sql", "indexed_value", "truncate_utf8"]

IndexedValue = str | float | bool


def truncate_utf8(value: str, max_bytes: int) -> str:
    """The longest prefix of ``value`` whose UTF-8 encoding fits in ``max_bytes``."""
    encoded = value.encode("utf-8")
    if len(encoded) <= max_bytes:
        return value
    # Decoding with "ignore" drops only the partial character left at the cut.
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def indexed_value(
    metadata: Mapping[str, Any] | None, prop: str, kind: MetadataIndexType, string_bytes: int
) -> IndexedValue | None:
    """The value metadata index ``prop`` of type ``kind`` holds for ``metadata`` (None: not indexed)."""
    node: Any = metadata
    for part in prop.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if kind == "string":
        return truncate_utf8(node, string_bytes) if isinstance(node, str) else None
    if kind == "boolean":
        return node if isinstance(node, bool) else None
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    return None


def indexed_from_sql(
    json_type: str | None, value: Any, kind: MetadataIndexType, string_bytes: int
) -> IndexedValue | None:
    """:func:`indexed_value` for a property read with SQLite's ``json_type``/``json_extract``.

    SQLite reports JSON ``true`` as the integer 1, so the JSON type decides, not the Python type.
    """
    if kind == "string":
        return truncate_utf8(value, string_bytes) if json_type == "text" else None
    if kind == "boolean":
        return json_type == "true" if json_type in ("true", "false") else None
    return float(value) if json_type in ("integer", "real") else None


class StringDictionary:
    """Interns the (truncated) strings of one string index into int codes shared by all namespaces.

    Range filters on strings are lexicographic, so the dictionary also keeps each code's rank in sorted
    order; it is rebuilt lazily when new strings have been added since the last range query.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._values: list[str] = []
        self._ranks: npt.NDArray[np.int64] | None = None
        self._sorted: npt.NDArray[np.str_] | None = None

    def __len__(self) -> int:
        return len(self._values)

    def intern(self, value: str) -> int:
        code = self._codes.get(value)
        if code is None:
            code = len(self._values)
            self._codes[value] = code
            self._values.append(value)
            self._ranks = None
        return code

    def lookup(self, value: str) -> int:
        """The code of ``value``, or -1 when no vector ever held it."""
        return self._codes.get(value, -1)

    def value(self, code: int) -> str:
        return self._values[code]

    def ranks(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_]]:
        """(rank of each code, the strings in sorted order)."""
        if self._ranks is None or self._sorted is None:
            values = np.array(self._values if self._values else [""], dtype=np.str_)
            order = np.argsort(values, kind="stable")
            ranks = np.empty(len(order), dtype=np.int64)
            ranks[order] = np.arange(len(order))
            self._ranks, self._sorted = ranks, values[order]
        return self._ranks, self._sorted


class Column:
    """One metadata index over the rows of one namespace's matrix."""

    __slots__ = ("data", "kind", "present", "strings")

    def __init__(self, kind: MetadataIndexType, capacity: int, strings: StringDictionary | None) -> None:
        self.kind = kind
        self.strings = strings
        self.present: npt.NDArray[np.bool_] = np.zeros(capacity, dtype=np.bool_)
        dtype = {"number": np.float64, "boolean": np.bool_, "string": np.int32}[kind]
        self.data: np.ndarray[Any, Any] = np.zeros(capacity, dtype=dtype)

    def resize(self, capacity: int) -> None:
        size = min(capacity, self.present.shape[0])
        present = np.zeros(capacity, dtype=np.bool_)
        present[:size] = self.present[:size]
        data = np.zeros(capacity, dtype=self.data.dtype)
        data[:size] = self.data[:size]
        self.present, self.data = present, data

    def set(self, row: int, value: IndexedValue | None) -> None:
        if value is None:
            self.present[row] = False
            self.data[row] = 0
            return
        self.present[row] = True
        if self.kind == "string":
            assert self.strings is not None and isinstance(value, str)
            self.data[row] = self.strings.intern(value)
        else:
            self.data[row] = value

    def move(self, src: int, dst: int) -> None:
        self.present[dst] = self.present[src]
        self.data[dst] = self.data[src]

    def get(self, row: int) -> IndexedValue | None:
        """The indexed value of ``row`` as a JSON-ready Python value."""
        if not self.present[row]:
            return None
        if self.kind == "string":
            assert self.strings is not None
            return self.strings.value(int(self.data[row]))
        if self.kind == "boolean":
            return bool(self.data[row])
        number = float(self.data[row])
        # JS numbers have no int/float split: an integral value comes back as an int.
        return int(number) if number.is_integer() and abs(number) < 2**53 else number

    @property
    def nbytes(self) -> int:
        return int(self.present.nbytes + self.data.nbytes)
