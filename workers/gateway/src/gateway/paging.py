"""Opaque list cursors and id-shaped path parameters, shared by every route that pages or addresses an
object by id.

Cursors: a cursor is the base64url (unpadded) of a short text whose shape each list defines with a
regular expression (``created_at|id``, ``m|seq`` ...). :func:`decode_cursor` accepts only what
:func:`encode_cursor` could have produced for that shape; anything else — non-ASCII, bad base64,
another list's cursor, a tampered value — is a 400, never a 500 or a silent restart.

Ids: :func:`id_path` registers a Starlette path convertor for an id pattern, so a path such as
``/v1/documents/batch`` never matches ``/{document_id}`` (a wrong method there answers 405 with the
right ``Allow``, and any non-id path is a 404), and returns the documented ``Path`` parameter.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from edgerag.problems import BadRequest
from fastapi import Path, Query
from starlette.convertors import StringConvertor, register_url_convertor

__all__ = ["CURSOR_QUERY", "decode_cursor", "encode_cursor", "id_path"]

_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,200}")

CURSOR_QUERY: Any = Query(
    None,
    description="next_cursor of the previous page (any other value is a 400)",
    json_schema_extra={"pattern": "^[A-Za-z0-9_-]*$"},
)


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: re.Pattern[str]) -> re.Match[str]:
    """The parts of a cursor this API issued with ``shape``; anything else is a 400."""
    invalid = BadRequest("the cursor is not one this API returned; start again without one")
    if not _CURSOR_TEXT.fullmatch(cursor):
        raise invalid
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise invalid from exc
    match = shape.fullmatch(text)
    if match is None:
        raise invalid
    return match


def id_path(convertor: str, pattern: str, description: str) -> Any:
    """Register ``{name:<convertor>}`` for ids matching ``pattern``; the documented path parameter."""

    class _IdConvertor(StringConvertor):
        regex = pattern

    register_url_convertor(convertor, _IdConvertor())
    return Path(description=description, json_schema_extra={"pattern": f"^{pattern}$"})
