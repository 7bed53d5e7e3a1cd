"""Document metadata: the client's flat key/value pairs, validated one way wherever they are set.

Rules (``PATCH /v1/documents/{id}`` applies them; uploads apply the same count and value types):
flat keys (1-64 characters, no quote, backslash or control character, so every key is addressable by
a filter: :func:`edgerag.filters.valid_key`), values that are strings (at most
:data:`MAX_VALUE_CHARS`), finite numbers or booleans — no nulls, lists or objects — at most
:data:`MAX_KEYS` keys and :data:`MAX_JSON_BYTES` of compact JSON in all.

A merge (:func:`merge_metadata`) follows JSON Merge Patch (RFC 7396) on a flat object: a key set to
``null`` is removed, any other value replaces.

To add a rule: check it in :func:`validate_metadata` with an error naming the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from edgerag.filters import MAX_KEY_CHARS, valid_key
from edgerag.problems import ValidationFailed

__all__ = ["MAX_JSON_BYTES", "MAX_KEYS", "MAX_VALUE_CHARS", "merge_metadata", "validate_metadata"]

MAX_KEYS = 32
MAX_VALUE_CHARS = 1000
MAX_JSON_BYTES = 8 * 1024


def _value_error(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if abs(value) <= 2**53 else "integers must be within ±2^53 (JSON numbers)"
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, str):
        return None if len(value) <= MAX_VALUE_CHARS else f"strings are at most {MAX_VALUE_CHARS} characters"
    return "values are strings, numbers or booleans (flat: no objects, lists or nulls)"


def validate_metadata(value: Any, loc: Sequence[str | int] = ("body", "metadata")) -> dict[str, Any]:
    """The metadata as a dict, or ValidationFailed (422) naming each failing key."""
    if not isinstance(value, Mapping):
        raise ValidationFailed(
            "metadata must be a JSON object",
            [{"loc": list(loc), "msg": "must be an object", "type": "metadata"}],
        )
    errors: list[dict[str, Any]] = []
    for key, item in value.items():
        if not valid_key(key):
            errors.append(
                {
                    "loc": [*loc, str(key)],
                    "msg": f"keys are 1-{MAX_KEY_CHARS} characters without quotes, backslashes or "
                    "control characters",
                    "type": "metadata",
                }
            )
            continue
        problem = _value_error(item)
        if problem:
            errors.append({"loc": [*loc, key], "msg": problem, "type": "metadata"})
    if len(value) > MAX_KEYS:
        errors.append({"loc": list(loc), "msg": f"at most {MAX_KEYS} keys", "type": "metadata"})
    if not errors:
        size = len(json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_JSON_BYTES:
            errors.append(
                {
                    "loc": list(loc),
                    "msg": f"at most {MAX_JSON_BYTES} bytes of JSON (this is {size})",
                    "type": "metadata",
                }
            )
    if errors:
        raise ValidationFailed(f"invalid metadata: {errors[0]['msg']}", errors)
    return dict(value)


def merge_metadata(
    current: Mapping[str, Any], patch: Any, loc: Sequence[str | int] = ("body", "metadata")
) -> dict[str, Any]:
    """``current`` with ``patch`` merged in (``null`` removes a key); the result is validated whole."""
    if not isinstance(patch, Mapping):
        raise ValidationFailed(
            "metadata must be a JSON object",
            [{"loc": list(loc), "msg": "must be an object", "type": "metadata"}],
        )
    merged = dict(current)
    for key, item in patch.items():
        if item is None:
            merged.pop(key, None)
        else:
            merged[key] = item
    return validate_metadata(merged, loc)
