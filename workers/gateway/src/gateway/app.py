"""The gateway's ASGI application, built once per isolate on first use (never at import time).

Routes reach the bindings through ``request.scope["env"]``, which the Workers ASGI bridge (and the local
runtime's stand-in for it) fills in for every request. Errors leave as problem+json (gateway.errors).
"""

from __future__ import annotations

from typing import Any

from edgerag.contracts.dedalus import HealthReply
from fastapi import Depends, FastAPI
from pydantic import BaseModel

from gateway.deps import get_env
from gateway.errors import install_problem_handlers
from gateway.observe import ObservabilityMiddleware
from gateway.openapi import install_docs, install_problem_schema
from gateway.routes import admin, documents, keys, openai_compat, search, usage
from gateway.routes.answer import router as answer_router
from gateway.routes.chat import router as chat_router
from gateway.routes.evaluations import router as evaluations_router
from gateway.routes.safety import router as safety_router
from gateway.routes.uploads import router as uploads_router
from gateway.routes.users import router as users_router
from gateway.url_documents import router as url_documents_router

__all__ = ["build_app", "get_app"]

_app: FastAPI | None = None


class Health(BaseModel):
    service: str
    status: str
    dedalus: HealthReply


def build_app() -> FastAPI:
    app = FastAPI(
        title="edgerag gateway",
        version="0.1.0",
        description=(
            "Multi-tenant retrieval API: documents, hybrid search, API keys. Authenticate with "
            "'Authorization: Bearer <API key>' (the operator routes under /v1/admin take the operator "
            "token instead). Every error is an RFC 9457 application/problem+json document."
        ),
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_docs(app)
    app.add_middleware(ObservabilityMiddleware)

    @app.get("/health", tags=["health"])
    async def health(env: Any = Depends(get_env)) -> Health:
        # The reply crosses the service binding as plain data; the shared contract validates it.
        dedalus = HealthReply.model_validate(dict(await env.DEDALUS.health()))
        return Health(service="gateway", status="ok", dedalus=dedalus)

    for router in (admin.router, keys.router, documents.router, search.router):
        app.include_router(router)
    app.include_router(usage.router)
    app.include_router(uploads_router)
    app.include_router(url_documents_router)
    app.include_router(openai_compat.router)
    app.include_router(chat_router)
    app.include_router(users_router)
    app.include_router(answer_router)
    app.include_router(safety_router)
    app.include_router(evaluations_router)
    install_problem_schema(app)
    return app


def get_app() -> FastAPI:
    global _app
    if _app is None:
        _app = build_app()
    return _app
