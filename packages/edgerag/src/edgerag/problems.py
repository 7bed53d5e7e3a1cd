"""The API's error hierarchy, mapped to RFC 9457 problem details.

Domain code (stores, pipelines, routes) raises these; the gateway's one handler turns a
:class:`Problem` into an ``application/problem+json`` response from :meth:`Problem.to_dict`, with
:attr:`Problem.status` and the headers in :attr:`Problem.headers`. There are no framework imports here,
so every layer and every worker can raise them.

The members follow RFC 9457: ``type`` (a URI naming the problem kind, here
``https://edgerag.dev/problems/<slug>``), ``title`` (the same for every occurrence of the kind),
``status``, ``detail`` (this occurrence, for humans) and ``instance`` (usually the request path, added
by the gateway), plus extension members such as ``errors`` (validation) or ``retry_after``.
``detail`` and extensions are shown to clients: never put secrets, SQL or stack traces in them.

To add a kind: subclass :class:`Problem` with ``status``, ``title`` and ``slug``; override
:attr:`headers` if the status calls for a response header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

__all__ = [
    "TYPE_BASE",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InternalError",
    "MethodNotAllowed",
    "NotFound",
    "NotImplementedProblem",
    "PayloadTooLarge",
    "Problem",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpstreamFailure",
    "ValidationFailed",
    "transient_platform_failure",
]

TYPE_BASE = "https://edgerag.dev/problems/"
_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class Problem(Exception):  # noqa: N818 - RFC 9457 calls it a problem
    """Base of every API error. Subclasses set ``status``, ``title`` and ``slug``."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str | None = None, *, instance: str | None = None, **extra: Any) -> None:
        clash = _MEMBERS.intersection(extra)
        if clash:
            raise ValueError(f"extension members may not redefine {sorted(clash)}")
        super().__init__(detail or self.title)
        self.detail = detail
        self.instance = instance
        self.extra: dict[str, Any] = dict(extra)

    @property
    def type(self) -> str:
        return TYPE_BASE + self.slug

    @property
    def headers(self) -> dict[str, str]:
        """Response headers this problem calls for (``WWW-Authenticate``, ``Retry-After``)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The problem-details JSON object (members that are unset are left out)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, detail={self.detail!r})"


class BadRequest(Problem):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(Problem):
    """401. Carries the challenge clients need (RFC 9110: a 401 response must send WWW-Authenticate)."""

    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(
        self, detail: str | None = None, *, challenge: str = 'Bearer realm="edgerag"', **extra: Any
    ) -> None:
        super().__init__(detail, **extra)
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    """404. Also the answer for another tenant's objects: their existence is not revealed."""

    status, title, slug = 404, "Not Found", "not-found"


class MethodNotAllowed(Problem):
    """405 with the methods the resource does support (RFC 9110 requires ``Allow``)."""

    status, title, slug = 405, "Method Not Allowed", "method-not-allowed"

    def __init__(self, detail: str | None = None, *, allow: Iterable[str] = (), **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.allow = sorted({method.upper() for method in allow})

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)} if self.allow else {}


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ValidationFailed(Problem):
    """422 with ``errors``: one ``{"loc": [...], "msg": ..., "type": ...}`` per failing field.

    Only those three keys are kept from each error: validation libraries also report the offending
    ``input``, which may be a secret the client sent, and that must not be echoed back or logged.
    """

    status, title, slug = 422, "Unprocessable Content", "validation"

    def __init__(
        self, detail: str | None = None, errors: Iterable[Mapping[str, Any]] = (), **extra: Any
    ) -> None:
        cleaned = [_field_error(error) for error in errors]
        super().__init__(detail or _summary(cleaned), errors=cleaned, **extra)
        self.errors = cleaned

    @classmethod
    def from_pydantic(cls, exc: Any) -> ValidationFailed:
        """From a ``pydantic.ValidationError`` (duck-typed: anything with ``errors()``)."""
        return cls(None, exc.errors())


class RateLimited(Problem):
    """429 with ``retry_after`` seconds, sent as the ``Retry-After`` header and a member."""

    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str | None = None, retry_after: int = 60, **extra: Any) -> None:
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")
        super().__init__(detail, retry_after=int(retry_after), **extra)
        self.retry_after = int(retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InternalError(Problem):
    """500 for the unexpected. Its detail is fixed: the cause goes to the logs, not the client."""

    def __init__(self, detail: str | None = "an unexpected error occurred", **extra: Any) -> None:
        super().__init__(detail, **extra)


class UpstreamFailure(Problem):
    """502: a platform service or model provider failed (after retries)."""

    status, title, slug = 502, "Bad Gateway", "upstream"


class NotImplementedProblem(Problem):
    """501: a request method the server does not implement for any resource."""

    status, title, slug = 501, "Not Implemented", "not-implemented"


class ServiceUnavailable(Problem):
    """503: a dependency is down or overloaded for now; ``retry_after`` (seconds), when given, is sent as
    the ``Retry-After`` header and a member."""

    status, title, slug = 503, "Service Unavailable", "unavailable"

    def __init__(self, detail: str | None = None, retry_after: int | None = None, **extra: Any) -> None:
        if retry_after is not None:
            if retry_after < 0:
                raise ValueError("retry_after must be >= 0 seconds")
            extra["retry_after"] = int(retry_after)
        super().__init__(detail, **extra)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(int(self.retry_after))}


# What Cloudflare's bindings say when a call failed for now and a retry may succeed (D1's documented
# retryable errors and overload messages; the same wording reaches Python as a JsException's message).
_TRANSIENT = (
    "network connection lost",
    "storage caused object to be reset",
    "reset because its code was updated",
    "overloaded",
    "queued for too long",
    "exceeded timeout",
    "internal error while starting up",
)
# Which binding a message comes from: D1 prefixes its errors "D1_ERROR"/"D1_..." (or names "D1 DB"),
# KV "KV <OP> failed", Vectorize "VECTOR_<OP>_ERROR", R2 "<method>: ..." with an R2 v4 code.
_SERVICES = (("D1", ("d1_", "d1 db")), ("KV", ("kv ",)), ("Vectorize", ("vector_",)), ("R2", ("r2 ",)))


def transient_platform_failure(exc: BaseException) -> ServiceUnavailable | None:
    """A 503 (``Retry-After: 1``) when ``exc`` is a platform binding's transient failure (D1 overloaded,
    its connection lost or its object reset, ...), else None: the caller's other mapping applies (an
    unexpected error stays a 500)."""
    message = str(exc).lower()
    if not any(phrase in message for phrase in _TRANSIENT):
        return None
    service = next((name for name, marks in _SERVICES if any(mark in message for mark in marks)), None)
    if service is None:
        return None
    return ServiceUnavailable(f"{service} is temporarily unavailable; retry shortly", retry_after=1)


def _field_error(error: Mapping[str, Any]) -> dict[str, Any]:
    loc = error.get("loc", ())
    if isinstance(loc, (str, int)):
        loc = (loc,)
    return {
        "loc": [str(part) for part in loc],  # strings throughout, as the gateway's own 422s
        "msg": str(error.get("msg", "")),
        "type": str(error.get("type", "")),
    }


def _summary(errors: list[dict[str, Any]], shown: int = 5) -> str:
    if not errors:
        return "the request is invalid"
    parts = [f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in errors[:shown]]
    more = len(errors) - shown
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
