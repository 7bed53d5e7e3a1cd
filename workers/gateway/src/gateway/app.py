"""The gateway's ASGI application, built once per isolate on first use (never at import time).

Routes reach the bindings through ``request.scope["env"]``, which the Workers ASGI bridge (and the local
runtime's stand-in for it) fills in for every request.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

__all__ = ["build_app", "get_app"]

_app: FastAPI | None = None


def build_app() -> FastAPI:
    app = FastAPI(title="edgerag gateway", version="0.1.0")

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        env = request.scope["env"]
        dedalus = await env.DEDALUS.health()
        return {"service": "gateway", "status": "ok", "dedalus": dedalus}

    return app


def get_app() -> FastAPI:
    global _app
    if _app is None:
        _app = build_app()
    return _app
