"""The one place that turns errors into RFC 9457 problem-details responses.

Every error the gateway can produce leaves as ``application/problem+json``: domain problems
(:mod:`edgerag.problems`), request validation errors (422 with the failing fields), unknown routes and
methods (404/405), and, as a last resort, unexpected exceptions (500 with no internals revealed).
"""

from __future__ import annotations

import logging
from typing import Any

from edgerag.problems import Problem
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["install_problem_handlers", "problem_response"]

log = logging.getLogger("edgerag.gateway")
PROBLEM_JSON = "application/problem+json"


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body = problem.to_dict()
    if instance is not None:
        body.setdefault("instance", instance)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def _plain(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]) or "invalid request"
        return _plain(422, "Unprocessable Content", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not Found", 405: "Method Not Allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        response = _plain(exc.status_code, titles.get(exc.status_code, "Error"), detail, request.url.path)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _plain(500, "Internal Server Error", "an unexpected error occurred", request.url.path)
