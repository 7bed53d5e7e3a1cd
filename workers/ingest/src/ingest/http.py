"""ingest over HTTP: only a health check; the work arrives through the queue."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from edgerag.httpreply import HttpReply, json_reply, problem_reply

__all__ = ["handle_http"]

_BINDINGS = ("DB", "FILES", "VECTORS", "AI")


async def handle_http(env: Any, method: str, url: str) -> HttpReply:
    path = urlsplit(url).path
    if path == "/health" and method in ("GET", "HEAD"):
        bound = sorted(name for name in _BINDINGS if getattr(env, name, None) is not None)
        return json_reply({"service": "ingest", "status": "ok", "bindings": bound})
    return problem_reply(404, "Not Found", f"ingest serves no {method} {path}")
