"""Opaque list cursors shared by the KV and R2 emulators.

A cursor names the last key a page returned; the next page starts strictly after it, so keys added or
removed between pages neither repeat nor hide the ones that stayed. A cursor the binding never issued
is a ``ValueError`` (each emulator words the binding error).
"""

from __future__ import annotations

import base64
import binascii
import json

__all__ = ["cursor_key", "make_cursor"]


def make_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_key}).encode("utf-8")).decode("ascii")


def cursor_key(cursor: str) -> str:
    """The key a cursor from :func:`make_cursor` names; ``ValueError`` for anything else."""
    try:
        payload = json.loads(base64.b64decode(cursor, altchars=b"-_", validate=True))
    except (binascii.Error, UnicodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a cursor this binding issued: {cursor!r}") from exc
    after = payload.get("after") if isinstance(payload, dict) else None
    if not isinstance(after, str):
        raise ValueError(f"not a cursor this binding issued: {cursor!r}")
    return after
