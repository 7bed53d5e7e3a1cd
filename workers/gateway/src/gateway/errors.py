"""The one place that turns errors into RFC 9457 problem-details responses.

Every error the gateway can produce leaves as ``application/problem+json`` in ONE vocabulary: the
problem kinds of :mod:`edgerag.problems` (``type`` = ``https://edgerag.dev/problems/<slug>``), whatever
raised it. Domain problems pass through; request validation errors become ``validation`` (422, with
the failing fields, a malformed JSON body included); framework HTTP errors (unknown route, method not
allowed, unparsable body) become the matching kind; anything unexpected becomes ``internal`` (500,
nothing revealed; the cause goes to the log), except a platform binding's transient failure (D1
overloaded or its connection lost: :func:`edgerag.problems.transient_platform_failure`), which is 503
``unavailable`` with ``Retry-After: 1``. Every problem carries the request id as the extension
member ``request_id`` and the ``X-Request-Id`` header (:mod:`gateway.observe`).

Request methods: a standard method (RFC 9110's, PATCH, QUERY) that the route does not accept answers
405 with ``Allow`` listing what it does accept; a method name HTTP does not define (``FOO``) answers 501
``not-implemented``, as RFC 9110 says for methods the server does not recognise.
"""

from __future__ import annotations

import logging

from edgerag.observability import current_request_id
from edgerag.problems import (
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    NotImplementedProblem,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
    ValidationFailed,
    transient_platform_failure,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.observe import REQUEST_ID_SCOPE_KEY
from gateway.openapi import PROBLEM_JSON

__all__ = ["KNOWN_METHODS", "install_problem_handlers", "problem_response"]

log = logging.getLogger("edgerag.gateway")

# Methods HTTP defines (RFC 9110 section 9, PATCH from RFC 5789, QUERY from the HTTP QUERY draft).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)


def problem_response(
    problem: Problem, instance: str | None = None, request_id: str | None = None
) -> JSONResponse:
    """The problem as a response; its ``request_id`` member and ``X-Request-Id`` header name the
    request (``request_id``, else the current one of :mod:`gateway.observe`)."""
    body = problem.to_dict()
    if instance is not None:
        body.setdefault("instance", instance)
    headers = dict(problem.headers)
    request_id = request_id or current_request_id()
    if request_id is not None:
        body.setdefault("request_id", request_id)
        headers["X-Request-Id"] = request_id
    return JSONResponse(body, status_code=problem.status, headers=headers, media_type=PROBLEM_JSON)


def _allowed_methods(request: Request) -> set[str]:
    """The methods some route of this path accepts (asked of the router, so included routers count)."""
    scope = dict(request.scope)
    return {
        method
        for method in KNOWN_METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL for route in request.app.router.routes
        )
    }


def _from_http(request: Request, exc: StarletteHTTPException) -> Problem:
    detail = exc.detail if isinstance(exc.detail, str) else None
    status = exc.status_code
    if status == 404:
        return NotFound(f"no route for {request.method} {request.url.path}")
    if status == 405:
        if request.method.upper() not in KNOWN_METHODS:
            return NotImplementedProblem(f"this API does not implement the {request.method} method")
        allowed = _allowed_methods(request)
        return MethodNotAllowed(f"{request.url.path} does not accept {request.method}", allow=allowed or ())
    if status == 400:
        # FastAPI's "There was an error parsing the body": the body is not what the route declares.
        return ValidationFailed(
            "the request body could not be parsed",
            errors=[{"loc": ["body"], "msg": detail or "unparsable body", "type": "body_parsing"}],
        )
    if status == 413:
        return PayloadTooLarge(detail)
    if status == 415:
        return UnsupportedMediaType(detail)
    if 400 <= status < 500:
        return BadRequest(detail)
    return InternalError()


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(ValidationFailed(None, exc.errors()), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = _from_http(request, exc)
        response = problem_response(problem, request.url.path)
        for key, value in (exc.headers or {}).items():
            response.headers.setdefault(key, value)
        return response

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        transient = transient_platform_failure(exc)
        if transient is not None:  # D1 overloaded, connection lost, ...: 503 + Retry-After, not a 500
            log.warning("transient platform failure on %s %s: %s", request.method, request.url.path, exc)
            return problem_response(transient, request.url.path, request.scope.get(REQUEST_ID_SCOPE_KEY))
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # This handler runs outside the middleware, so the request id comes from the scope.
        return problem_response(InternalError(), request.url.path, request.scope.get(REQUEST_ID_SCOPE_KEY))
