"""One filter language over documents, compiled for D1 (exact) and for Vectorize (document ids).

The language (what ``POST /v1/search`` takes in ``filters.metadata`` and the built-in fields
``filters.content_type``, ``filters.created_at``, ``filters.title``)::

    {"team": "search", "year": {"$gte": 2024, "$lt": 2027}, "lang": {"$in": ["en", "de"]}}

* ``{field: value}`` is ``{field: {"$eq": value}}``; several fields, and several operators on one
  field, are an AND (there is no OR).
* ``$eq $ne``: a string, number or boolean. ``$in $nin``: a non-empty list of those.
  ``$lt $lte $gt $gte``: a string or a number (strings compare as text, so ISO timestamps order).
* Comparisons are type-strict, as in Vectorize: ``"3"`` never equals ``3``, and a range on numbers
  never matches a string. A document without the field (or with another type there) fails ``$eq``,
  ``$in`` and ranges and passes ``$ne`` and ``$nin`` — Vectorize's rule for vectors without the field.
* Built-ins: ``content_type`` (the type without its charset, ``text/plain``), ``created_at`` (ISO-8601
  UTC text, so ``{"$gte": "2026-01-01"}`` works) and ``title``; all strings.
* Limits (so a filter always fits D1's 100 bound parameters next to the rest of a search query):
  at most :data:`MAX_FIELDS` fields, :data:`MAX_VALUES` values in all, keys of at most 64 characters
  without ``"``, ``\\`` or control characters, strings of at most :data:`MAX_STRING_CHARS`.

Bad input raises :class:`~edgerag.problems.ValidationFailed` (422) whose ``errors`` name the failing
path, e.g. ``["body", "filters", "metadata", "year", "$gte"]``.

Compiled forms:

* D1 (:meth:`DocumentFilter.sql`): a boolean SQL fragment over ``documents`` (alias ``d``), with
  ``json_extract``/``json_type`` on ``d.metadata``; values are bound parameters, never SQL text.
* Vectorize: vectors carry only ``tenant_id``, ``document_id`` and ``seq`` (the metadata-indexed
  fields the tenant files declare), not the document's user metadata: copying it onto every vector
  would make each ``PATCH`` rewrite all of a document's vectors and need one metadata index per user
  field (Vectorize allows 10). So a filter reaches Vectorize as ``{"document_id": {"$in": [...]}}``
  resolved through D1 when at most :data:`VECTOR_IN_LIMIT` documents match (exact); when more match,
  the vector candidates are post-filtered through D1 (exact, but the vector retriever then sees only
  its top 100 before filtering, so a very selective filter over a big tenant may get fewer vector
  hits: the keyword retriever, filtered inside its SQL, is unaffected). See
  :func:`edgerag.retrieval.hybrid.hybrid_search`.

To add an operator: list it in :data:`OPERATORS`, check its operand in :func:`_operand`, and compile it
in :meth:`Condition.sql`. To add a built-in field: a column expression in :data:`BUILTINS`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgerag.problems import ValidationFailed

__all__ = [
    "BUILTINS",
    "MAX_FIELDS",
    "MAX_KEY_CHARS",
    "MAX_STRING_CHARS",
    "MAX_VALUES",
    "OPERATORS",
    "VECTOR_IN_LIMIT",
    "Condition",
    "DocumentFilter",
    "parse_filter",
    "valid_key",
]

Scalar = str | int | float | bool
OPERATORS = ("$eq", "$ne", "$in", "$nin", "$lt", "$lte", "$gt", "$gte")
_RANGE = frozenset({"$lt", "$lte", "$gt", "$gte"})
_LISTS = frozenset({"$in", "$nin"})
MAX_FIELDS = 10
MAX_VALUES = 30
MAX_STRING_CHARS = 256
MAX_KEY_CHARS = 64
# A Vectorize filter must be under 2048 bytes of JSON: 50 document ids (30 characters each) fit.
VECTOR_IN_LIMIT = 50
_KEY = re.compile(r'[^"\\\x00-\x1f\x7f]{1,' + str(MAX_KEY_CHARS) + "}")
# The type without its parameters: "text/plain; charset=shift_jis" filters as "text/plain".
BUILTINS: dict[str, str] = {
    "content_type": "lower(trim(substr(d.content_type, 1, instr(d.content_type || ';', ';') - 1)))",
    "created_at": "d.created_at",
    "title": "d.title",
}
_SQL_OPS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


def valid_key(key: object) -> bool:
    """A flat metadata key: 1-64 characters, no quote, backslash or control character."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def _kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "string"


@dataclass(frozen=True)
class Condition:
    """One operator on one field; ``builtin`` fields are document columns, the others metadata keys."""

    field: str
    op: str
    value: Scalar | tuple[Scalar, ...]
    builtin: bool = False

    def _path(self, params: list[Any]) -> str:
        """The metadata key's JSON path as a placeholder (one per condition, however many values)."""
        params.append(f'$."{self.field}"')
        return f"?{len(params)}"

    def _equals(self, value: Scalar, params: list[Any], path: str) -> str:
        if self.builtin:
            params.append(value)
            return f"{BUILTINS[self.field]} = ?{len(params)}"
        if isinstance(value, bool):  # JSON true/false come out of json_extract as 1/0: test the type
            return f"json_type(d.metadata, {path}) = '{'true' if value else 'false'}'"
        params.append(value)
        types = "'integer', 'real'" if _kind(value) == "number" else "'text'"
        return (
            f"(json_type(d.metadata, {path}) IN ({types})"
            f" AND json_extract(d.metadata, {path}) = ?{len(params)})"
        )

    def sql(self, params: list[Any]) -> str:
        """This condition as SQL over ``documents d``; appends its bound values to ``params``."""
        path = "" if self.builtin else self._path(params)
        if self.op in ("$eq", "$ne"):
            assert not isinstance(self.value, tuple)
            expr = self._equals(self.value, params, path)
            return expr if self.op == "$eq" else f"NOT ({expr})"
        if self.op in _LISTS:
            assert isinstance(self.value, tuple)
            expr = "(" + " OR ".join(self._equals(v, params, path) for v in self.value) + ")"
            return expr if self.op == "$in" else f"NOT ({expr})"
        assert not isinstance(self.value, tuple)
        op = _SQL_OPS[self.op]
        params.append(self.value)
        if self.builtin:
            return f"{BUILTINS[self.field]} {op} ?{len(params)}"
        types = "'integer', 'real'" if _kind(self.value) == "number" else "'text'"
        return (
            f"(json_type(d.metadata, {path}) IN ({types})"
            f" AND json_extract(d.metadata, {path}) {op} ?{len(params)})"
        )


@dataclass(frozen=True)
class DocumentFilter:
    """A validated filter: an AND of :class:`Condition` (empty: every document)."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def sql(self, start: int = 1) -> tuple[str, list[Any]]:
        """``(fragment, params)``: the fragment's placeholders are numbered from ``?{start}``.

        The fragment is ``1`` for an empty filter. Every ``NOT`` is wrapped in ``COALESCE`` so a
        missing key (SQL NULL) makes ``$ne``/``$nin`` true rather than NULL.
        """
        if not self.conditions:
            return "1", []
        params: list[Any] = []
        parts = [c.sql(params) for c in self.conditions]
        fragment = " AND ".join(f"COALESCE({p}, 1)" if p.startswith("NOT") else p for p in parts)
        # Renumber ?1.. to ?start..: conditions number their own placeholders from 1.
        if start != 1:
            fragment = re.sub(r"\?(\d+)", lambda m: f"?{int(m.group(1)) + start - 1}", fragment)
        return fragment, params

    def canonical(self) -> list[list[Any]]:
        """A JSON-able, order-independent form (for cache keys)."""
        return sorted(
            ([c.field, c.builtin, c.op, list(c.value) if isinstance(c.value, tuple) else c.value])
            for c in self.conditions
        )


def _error(loc: Sequence[str | int], msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": "filter"}


def _scalar(value: Any, loc: list[str | int], errors: list[dict[str, Any]], *, builtin: bool) -> bool:
    if isinstance(value, bool) or isinstance(value, int):
        ok = not builtin and (isinstance(value, bool) or abs(value) <= 2**53)
        if not ok:
            errors.append(_error(loc, "must be a string" if builtin else "integers must be within ±2^53"))
        return ok
    if isinstance(value, float):
        if builtin or not math.isfinite(value):
            errors.append(_error(loc, "must be a string" if builtin else "numbers must be finite"))
            return False
        return True
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            errors.append(_error(loc, f"strings are at most {MAX_STRING_CHARS} characters"))
            return False
        return True
    errors.append(_error(loc, "must be a string" if builtin else "must be a string, number or boolean"))
    return False


def _operand(
    op: str, value: Any, loc: list[str | int], errors: list[dict[str, Any]], builtin: bool
) -> Scalar | tuple[Scalar, ...] | None:
    if op in _LISTS:
        if not isinstance(value, list) or not value:
            errors.append(_error(loc, f"{op} takes a non-empty list"))
            return None
        ok = [_scalar(v, [*loc, i], errors, builtin=builtin) for i, v in enumerate(value)]
        return tuple(value) if all(ok) else None
    if not _scalar(value, loc, errors, builtin=builtin):
        return None
    if op in _RANGE and isinstance(value, bool):
        errors.append(_error(loc, f"{op} takes a string or a number, not a boolean"))
        return None
    return value  # type: ignore[no-any-return]


def _field(
    name: str, spec: Any, loc: list[str | int], errors: list[dict[str, Any]], builtin: bool
) -> list[Condition]:
    if not isinstance(spec, dict):
        value = _operand("$eq", spec, loc, errors, builtin)
        return [] if value is None else [Condition(name, "$eq", value, builtin)]
    if not spec:
        errors.append(_error(loc, "an operator object needs at least one operator"))
        return []
    found: list[Condition] = []
    for op, operand in spec.items():
        if op not in OPERATORS:
            errors.append(_error([*loc, op], f"unknown operator; use one of {', '.join(OPERATORS)}"))
            continue
        value = _operand(op, operand, [*loc, op], errors, builtin)
        if value is not None:
            found.append(Condition(name, op, value, builtin))
    return found


def parse_filter(
    metadata: Mapping[str, Any] | None = None,
    builtins: Mapping[str, Any] | None = None,
    *,
    loc: Sequence[str | int] = ("body", "filters"),
) -> DocumentFilter:
    """Validate and build a filter; raises ValidationFailed (422) naming every failing path."""
    errors: list[dict[str, Any]] = []
    conditions: list[Condition] = []
    fields = 0
    for group, specs, builtin in (("metadata", metadata, False), (None, builtins, True)):
        if specs is None:
            continue
        base = [*loc, group] if group else list(loc)
        if not isinstance(specs, Mapping):
            errors.append(_error(base, "must be an object of field: condition"))
            continue
        for name, spec in specs.items():
            if spec is None and builtin:
                continue  # an unset built-in (the route passes every one)
            fields += 1
            if builtin and name not in BUILTINS:
                errors.append(_error([*base, name], f"not a built-in field ({', '.join(BUILTINS)})"))
                continue
            if not valid_key(name):
                errors.append(
                    _error(
                        [*base, str(name)],
                        f"keys are 1-{MAX_KEY_CHARS} characters without quotes, backslashes or control "
                        "characters (flat: no nested objects)",
                    )
                )
                continue
            conditions += _field(name, spec, [*base, name], errors, builtin)
    if fields > MAX_FIELDS:
        errors.append(_error(list(loc), f"at most {MAX_FIELDS} fields per filter"))
    values = sum(len(c.value) if isinstance(c.value, tuple) else 1 for c in conditions)
    if values > MAX_VALUES:
        errors.append(_error(list(loc), f"at most {MAX_VALUES} values per filter (this one has {values})"))
    if errors:
        raise ValidationFailed(f"invalid filter: {errors[0]['msg']}", errors)
    return DocumentFilter(tuple(conditions))


def describe(flt: DocumentFilter) -> str:
    """Compact JSON of the canonical form (logs and cache keys)."""
    return json.dumps(flt.canonical(), separators=(",", ":"), sort_keys=True)
