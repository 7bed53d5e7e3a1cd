"""dedalus over HTTP: a health check for operators; everything else goes over RPC."""

from __future__ import annotations

from urllib.parse import urlsplit

from edgerag.httpreply import HttpReply, json_reply, problem_reply

from dedalus.service import DedalusService

__all__ = ["handle_http"]


async def handle_http(service: DedalusService, method: str, url: str) -> HttpReply:
    path = urlsplit(url).path
    if path == "/health" and method in ("GET", "HEAD"):
        return json_reply(await service.health())
    return problem_reply(404, "Not Found", f"dedalus serves no {method} {path}")
