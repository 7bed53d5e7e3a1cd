"""Errors on the OpenAI-compatible routes, in OpenAI's shape instead of problem+json.

OpenAI's clients (the official SDKs, LangChain, ...) read ``{"error": {"message", "type", "param",
"code"}}`` and pick their exception class by HTTP status (400 ``BadRequestError``, 401
``AuthenticationError``, 403 ``PermissionDeniedError``, 404 ``NotFoundError``, 429 ``RateLimitError``,
5xx ``InternalServerError``), so the routes under :data:`OPENAI_ROUTES` answer that way while the rest
of the API keeps RFC 9457 problems.

How it is scoped: the routes are declared with :class:`OpenAIRoute`, whose handler turns everything a
request can raise — a domain :class:`~edgerag.problems.Problem` from a dependency (401 with
``WWW-Authenticate``, 403, 429 with ``Retry-After``), FastAPI's body validation, an unexpected
exception — into :func:`openai_error_response`, keeping the problem's headers; a method the route does
not accept is a 405 with ``Allow`` in the same shape. Nothing in :mod:`gateway.errors` changes: those
handlers never see these routes' errors. Body validation is a **400** ``invalid_request_error`` with
``param`` naming the first failing field (OpenAI's status, not the 422 the rest of the API uses).

To add a status: map it in :data:`_TYPES` (and :data:`_CODES` for its default ``code``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from edgerag.problems import Problem, ValidationFailed
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

__all__ = [
    "ERROR_FORMAT_EXTENSION",
    "OPENAI_ERROR_RESPONSES",
    "OpenAIError",
    "OpenAIErrorBody",
    "OpenAIProblem",
    "OpenAIRoute",
    "openai_error_response",
    "openai_errors",
]

log = logging.getLogger("edgerag.gateway")

# Marks an operation whose errors are OpenAI-shaped, so gateway.openapi leaves them documented as such.
ERROR_FORMAT_EXTENSION = "x-error-format"

_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",  # what OpenAI itself sends for a bad key (code invalid_api_key)
    402: "insufficient_quota",  # the tenant's budget is used up
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_CODES: dict[int, str] = {
    401: "invalid_api_key",
    402: "insufficient_quota",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limit_exceeded",
}

_DESCRIPTIONS: dict[int, str] = {
    400: "invalid_request_error: the body failed validation (param names the field) or the request "
    "cannot be served as asked",
    401: "invalid_api_key: missing, unknown or revoked API key (with WWW-Authenticate)",
    402: "insufficient_quota: the tenant's monthly token or cost budget is spent",
    403: "permission_error: the API key lacks the 'chat' scope",
    404: "model_not_found: the model is not one this plan may use (see GET /v1/models)",
    413: "invalid_request_error: the prompt does not fit the model's context window",
    429: "rate_limit_exceeded: the tenant's rate limit or the plan's hourly request limit (with Retry-After)",
    502: "server_error: a model or platform service failed",
    503: "server_error: the model service is unavailable or misconfigured",
}


class OpenAIErrorBody(BaseModel):
    message: str = Field(description="for humans")
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(default=None, description="the request field at fault, when there is one")
    code: str | None = Field(default=None, examples=["model_not_found"])


class OpenAIError(BaseModel):
    """OpenAI's error document (every 4xx/5xx of the OpenAI-compatible routes)."""

    error: OpenAIErrorBody


class OpenAIProblem(Exception):  # noqa: N818 - the counterpart of edgerag.problems.Problem
    """An error these routes raise with OpenAI's fields chosen explicitly (``code``, ``param``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else _CODES.get(status)
        self.param = param
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"OpenAIProblem(status={self.status}, code={self.code!r}, message={self.message!r})"


def openai_error_response(problem: OpenAIProblem) -> JSONResponse:
    body = OpenAIErrorBody(
        message=problem.message,
        type=_TYPES.get(problem.status, "server_error" if problem.status >= 500 else "invalid_request_error"),
        param=problem.param,
        code=problem.code,
    )
    return JSONResponse(
        {"error": body.model_dump()}, status_code=problem.status, headers=problem.headers or None
    )


def _param(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "header", "path"):
        parts = parts[1:]
    return ".".join(parts) or None


def _from_validation(errors: Sequence[Any]) -> OpenAIProblem:
    cleaned = ValidationFailed(None, errors)  # keeps loc/msg/type only: never echoes the input
    first = cleaned.errors[0] if cleaned.errors else {"loc": [], "msg": "invalid request"}
    message = cleaned.detail or "the request is invalid"
    return OpenAIProblem(400, message, code="invalid_request", param=_param(first["loc"]))


def to_openai(exc: Exception) -> OpenAIProblem:
    """The OpenAI-shaped error for anything a request on these routes raised."""
    if isinstance(exc, OpenAIProblem):
        return exc
    if isinstance(exc, RequestValidationError):
        return _from_validation(exc.errors())
    if isinstance(exc, ValidationFailed):
        return _from_validation(exc.errors)
    if isinstance(exc, Problem):
        status = 400 if exc.status == 422 else exc.status
        return OpenAIProblem(status, exc.detail or exc.title, headers=exc.headers)
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "the request could not be served"
        if exc.status_code == 400:
            return OpenAIProblem(400, f"the request body could not be parsed: {detail}", code="invalid_json")
        if exc.status_code < 500:
            return OpenAIProblem(exc.status_code, detail, headers=dict(exc.headers or {}))
    log.exception("unhandled error on an OpenAI-compatible route", exc_info=exc)
    return OpenAIProblem(500, "an unexpected error occurred", code="internal_error")


class OpenAIRoute(APIRoute):
    """An APIRoute whose every error is OpenAI-shaped (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return openai_error_response(to_openai(exc))

        return route_handler

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allowed = ", ".join(sorted(self.methods))
            problem = OpenAIProblem(
                405, f"{scope['path']} does not accept {scope['method']}", headers={"Allow": allowed}
            )
            await openai_error_response(problem)(scope, receive, send)
            return
        await super().handle(scope, receive, send)


def openai_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses, as these routes send them."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "model": OpenAIError,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}},
        }
        for status in statuses
    }


OPENAI_ERROR_RESPONSES = openai_errors(400, 401, 403, 429, 502, 503)
