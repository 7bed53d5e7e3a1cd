"""JSON -> one line per value, ``path: value``, in sections per top-level key (or per batch of items).

``{"users": [{"name": "Ada"}]}`` becomes ``users[0].name: Ada``: the keys are text too, so a search
for "name Ada" finds it, and the path says where the value lives. A top-level object gives one
section per key (named by the key); a top-level array gives sections of up to ``_ITEMS_PER_SECTION``
items ("[0]..[49]"). Empty containers and nulls are shown as written; strings are not quoted.

To render another shape (e.g. JSON Lines): parse each line and feed :func:`_lines` the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from edgerag.extract import ExtractedDocument, ExtractionError, Section, decode_text

__all__ = ["extract_json", "json_lines"]

_ITEMS_PER_SECTION = 50
_MAX_VALUE_CHARS = 2_000
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_MAX_DEPTH = 64


def _key_path(prefix: str, key: str) -> str:
    part = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
    return f"{prefix}.{part}" if prefix else part


def json_lines(value: Any, path: str = "", depth: int = 0) -> Iterator[str]:
    """``path: value`` lines for every leaf of ``value``."""
    if depth > _MAX_DEPTH:
        yield f"{path}: {json.dumps(value, ensure_ascii=False)[:_MAX_VALUE_CHARS]}"
    elif isinstance(value, dict):
        if not value:
            yield f"{path}: {{}}" if path else "{}"
        for key, item in value.items():
            yield from json_lines(item, _key_path(path, str(key)), depth + 1)
    elif isinstance(value, list):
        if not value:
            yield f"{path}: []" if path else "[]"
        for index, item in enumerate(value):
            yield from json_lines(item, f"{path}[{index}]", depth + 1)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        text = " ".join(text.split())[:_MAX_VALUE_CHARS]
        yield f"{path}: {text}" if path else text


def extract_json(data: bytes, charset: str | None) -> ExtractedDocument:
    """A JSON document's values with their paths (see the module docstring)."""
    try:
        value = json.loads(decode_text(data, charset))
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"the JSON is not valid: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise ExtractionError("the JSON is nested too deeply to read") from exc
    sections: list[Section] = []
    if isinstance(value, dict) and value:
        for key, item in value.items():
            path = _key_path("", str(key))
            sections.append(Section("\n".join(json_lines(item, path, 1)), section=path))
    elif isinstance(value, list) and value:
        for start in range(0, len(value), _ITEMS_PER_SECTION):
            items = value[start : start + _ITEMS_PER_SECTION]
            lines = [
                line
                for offset, item in enumerate(items)
                for line in json_lines(item, f"[{start + offset}]", 1)
            ]
            sections.append(Section("\n".join(lines), section=f"[{start}]..[{start + len(items) - 1}]"))
    else:
        sections.append(Section("\n".join(json_lines(value))))
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise ExtractionError("the JSON document has no values")
    title = value.get("title") if isinstance(value, dict) else None
    return ExtractedDocument(
        title_hint=title.strip()[:120] or None if isinstance(title, str) else None, sections=tuple(sections)
    )
