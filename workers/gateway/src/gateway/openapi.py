"""What the API description says about errors, security and the docs pages.

Every route declares the problems it can answer with ``responses=problems(401, 403, ...)``: each status
is documented as ``application/problem+json`` with the :class:`ProblemDetails` schema, which is what the
gateway's one error handler (:mod:`gateway.errors`) really sends. Routes that authenticate with an API
key depend on :data:`api_key_scheme` (the operator routes on :data:`operator_scheme`), so the schema
carries HTTP bearer security schemes and Swagger UI offers its "Authorize" button.

The docs pages (``/docs``, ``/redoc``) load their scripts from assets that ship inside a dependency
(``fastapi_offline``'s copies of Swagger UI and ReDoc), served by :func:`install_docs`: nothing is
fetched from a CDN, so they work offline and at the edge. Assets are read with ``importlib.resources``
(no thread pool, unlike ``StaticFiles``, because Pyodide has no threads).

To document a new status: add a :class:`edgerag.problems.Problem` subclass for it, describe it in
``_DESCRIPTIONS`` and list it in the route's ``problems(...)``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from edgerag.problems import NotFound
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PROBLEM_JSON",
    "FieldError",
    "ProblemDetails",
    "api_key_scheme",
    "install_docs",
    "install_problem_schema",
    "json_integer",
    "operator_scheme",
    "problems",
]

PROBLEM_JSON = "application/problem+json"


def json_integer(value: Any) -> Any:
    """A JSON Schema integer (1.0 is one) but not true/false or "5", which pydantic's lax mode would
    coerce into one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


# Use it as ``Annotated[int, Field(ge=..., le=...), BeforeValidator(json_integer)]``: bounds BEFORE the
# validator. After it (or on the field of an ``X | None``), pydantic emits raw "ge"/"le" keys that no
# JSON Schema tool reads (tests/unit/test_openapi_keywords.py).

# The statuses routes may declare, with what each means in this API (shown in the schema).
_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: malformed input that is not a body-validation error (e.g. a cursor this API "
    "never issued)",
    401: "Unauthorized: missing, unknown or revoked credential (with WWW-Authenticate)",
    402: "Payment Required: the tenant's monthly token or cost budget is used up (budget, used, resets_at)",
    403: "Forbidden: the credential lacks the scope this route needs",
    404: "Not Found: no such object in the caller's tenant (another tenant's objects are not revealed)",
    405: "Method Not Allowed (with Allow)",
    409: "Conflict: the request contradicts the current state",
    413: "Payload Too Large",
    415: "Unsupported Media Type (the detail names the detected type)",
    422: "Unprocessable Content: the body or parameters failed validation (see errors)",
    429: "Too Many Requests: the tenant's rate limit or the plan's hourly request limit (with Retry-After)",
    502: "Bad Gateway: a model or platform service failed",
    503: "Service Unavailable: a dependency (e.g. the ingestion queue) is unavailable; nothing was kept",
    504: "Gateway Timeout: the model service gave up within its deadline",
}


class FieldError(BaseModel):
    loc: list[str] = Field(description="path to the failing field, e.g. ['body', 'query']")
    msg: str
    type: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem; ``type`` is ``https://edgerag.dev/problems/<slug>``."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(examples=["https://edgerag.dev/problems/not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(ge=400, le=599, examples=[404])
    detail: str | None = Field(None, examples=["no document doc_01 in this tenant"])
    instance: str | None = Field(None, examples=["/v1/documents/doc_01"])
    errors: list[FieldError] | None = Field(None, description="422 only: one entry per failing field")
    retry_after: int | None = Field(None, description="429 only: seconds until the window resets")
    request_id: str | None = Field(
        None, description="the request's id, also sent as X-Request-Id: quote it when reporting a problem"
    )


def install_problem_schema(app: FastAPI) -> None:
    """Make the generated schema say what the error handler sends: every 4xx/5xx response is
    ``application/problem+json`` with :class:`ProblemDetails` only (FastAPI also lists the route's
    ``application/json`` for declared models, and documents its own 422 as ``HTTPValidationError``,
    which the gateway never sends)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if operation.get("x-error-format") == "openai":
                    # The OpenAI-compatible routes document their own error shape, and answer invalid
                    # bodies with 400 as OpenAI does, never FastAPI's default 422.
                    operation.get("responses", {}).pop("422", None)
                    continue
                for status, response in operation.get("responses", {}).items():
                    if status[:1] in ("4", "5"):
                        response["content"] = problem
                        if status == "422":
                            response["description"] = _DESCRIPTIONS[422]
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses, all ``application/problem+json``."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "model": ProblemDetails,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }


# auto_error=False: the gateway raises its own 401 problem (with WWW-Authenticate) instead of
# FastAPI's 403; the schemes exist for the schema and Swagger's Authorize dialog.
api_key_scheme = HTTPBearer(
    scheme_name="apiKey",
    bearerFormat="er_<prefix>_<secret>",
    description="A tenant API key: 'Authorization: Bearer er_...'",
    auto_error=False,
)
operator_scheme = HTTPBearer(
    scheme_name="operatorToken",
    description="The operator secret (ADMIN_TOKEN): 'Authorization: Bearer <token>'",
    auto_error=False,
)

_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_ASSET_PREFIX = "/docs/assets"


@cache
def _asset(name: str) -> bytes:
    # Imported and read on first use only: the files are megabytes and most isolates never serve them.
    import fastapi_offline

    return (resources.files(fastapi_offline) / "static" / name).read_bytes()


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from bundled assets (no CDN)."""

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{_ASSET_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_ASSET_PREFIX}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{_ASSET_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{_ASSET_PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(_ASSET_PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no docs asset {name!r}")
        return Response(
            _asset(name), media_type=media_type, headers={"cache-control": "public, max-age=86400"}
        )
