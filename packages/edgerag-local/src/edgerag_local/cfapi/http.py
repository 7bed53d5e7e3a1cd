"""HTTP plumbing of the local Cloudflare API emulator: requests, the response envelope, routing, auth.

Every Cloudflare API v4 answer is the envelope ``{success, errors, messages, result[, result_info]}``;
handlers return a plain result (or raise :class:`ApiError`) and :class:`Router` wraps it. A request to a
route the emulator does not implement answers 404 with an envelope *and* is recorded in
``Router.unknown`` and logged, which is how the endpoint list was discovered: run real wrangler
against the emulator and read what it asked for.

To add an endpoint: write ``def handler(req: ApiRequest) -> Any`` in the module for its product and
register it with ``router.add("GET", "/accounts/{account}/...", handler)`` in that module's
``register`` function. Path placeholders become ``req.params``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

__all__ = ["API_PREFIX", "ApiError", "ApiRequest", "FormPart", "Paged", "Router", "envelope"]

API_PREFIX = "/client/v4"
log = logging.getLogger("edgerag_local.cfapi")


class ApiError(Exception):
    """An error answer: HTTP status plus Cloudflare's numeric code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{message} [code: {code}]")
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code}, {self.message!r})"


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart/form-data body (a worker upload's metadata or a module)."""

    name: str
    filename: str | None
    content_type: str
    content: bytes


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, 10026, f"could not parse request body as JSON: {exc}") from exc

    def form(self) -> list[FormPart]:
        """Parse a multipart/form-data body (the shape ``wrangler deploy`` uploads)."""
        content_type = self.headers.get("content-type", "")
        if "multipart/form-data" not in content_type:
            raise ApiError(400, 10021, "expected a multipart/form-data body")
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message: Message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        parts: list[FormPart] = []
        for part in message.iter_parts():  # type: ignore[attr-defined]
            payload = part.get_payload(decode=True) or b""
            parts.append(
                FormPart(
                    name=str(part.get_param("name", header="content-disposition") or ""),
                    filename=part.get_filename(),
                    content_type=part.get_content_type(),
                    content=payload,
                )
            )
        return parts


def envelope(
    result: Any,
    *,
    success: bool = True,
    errors: list[dict[str, Any]] | None = None,
    result_info: dict[str, Any] | None = None,
    messages: list[Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": success,
        "errors": errors or [],
        "messages": messages or [],
        "result": result,
    }
    if result_info is not None:
        body["result_info"] = result_info
    return body


@dataclass(frozen=True)
class Paged:
    """A list result with ``result_info`` (pagination the way the real API reports it)."""

    items: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[ApiRequest], Any]


def _page(result: Paged, request: ApiRequest) -> tuple[list[Any], dict[str, Any]]:
    """Slice a list by ``page``/``per_page``; without ``per_page`` page 1 holds everything.

    Clients loop "while a page came back full", so a later page must really be empty.
    """
    try:
        page = max(1, int(request.arg("page") or 1))
        per_page = int(request.arg("per_page") or 0) or max(len(result.items), 1)
    except ValueError as exc:
        raise ApiError(400, 10001, f"invalid pagination parameter: {exc}") from exc
    items = result.items[(page - 1) * per_page : page * per_page]
    total = len(result.items)
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(items),
        "total_count": total,
        "total_pages": max(1, -(-total // per_page)),
        **result.extra,
    }
    return items, info


class Router:
    """Method + path-pattern routing with a recorded list of requests nobody handled."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.unknown: list[str] = []
        self.calls: list[str] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}/?$"), handler))

    def dispatch(
        self,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        body: bytes,
        authorize: Callable[[ApiRequest], None],
    ) -> tuple[int, bytes, str]:
        path, _, qs = raw_path.partition("?")
        self.calls.append(f"{method} {path}")
        if not path.startswith(API_PREFIX):
            return self._error(404, 7000, "No route for that URI")
        path = path[len(API_PREFIX) :] or "/"
        query = parse_qs(qs, keep_blank_values=True)
        matched_path = False
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if found is None:
                continue
            matched_path = True
            if route_method != method:
                continue
            request = ApiRequest(method, path, query, headers, body, dict(found.groupdict()))
            try:
                authorize(request)
                result = handler(request)
                if isinstance(result, Paged):
                    items, info = _page(result, request)
                    return self._json(200, envelope(items, result_info=info))
                return self._json(200, envelope(result))
            except ApiError as exc:
                return self._error(exc.status, exc.code, exc.message)
            except Exception as exc:  # an emulator bug must still answer like the API, and say what broke
                log.exception("cfapi emulator: %s %s failed", method, path)
                return self._error(500, 10000, f"emulator error: {type(exc).__name__}: {exc}")
        self.unknown.append(f"{method} {path}")
        log.warning("cfapi emulator: no handler for %s %s", method, path)
        if matched_path:
            return self._error(405, 10405, f"method {method} not allowed")
        return self._error(
            404, 7003, f"Could not route to {path}, perhaps your object identifier is invalid?"
        )

    def _error(self, status: int, code: int, message: str) -> tuple[int, bytes, str]:
        return self._json(status, envelope(None, success=False, errors=[{"code": code, "message": message}]))

    @staticmethod
    def _json(status: int, body: Any) -> tuple[int, bytes, str]:
        return status, json.dumps(body).encode(), "application/json"
