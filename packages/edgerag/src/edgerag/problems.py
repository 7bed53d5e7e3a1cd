"""The error hierarchy of the API, mapped to RFC 9457 problem details.

Domain code raises these; the gateway's one handler (``gateway.errors``) turns them into
``application/problem+json`` responses. No framework imports here, so the stores and the workers can
raise them too. To add a problem: subclass :class:`Problem` with its status, title and slug.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "Problem",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpstreamFailure",
    "ValidationFailed",
]

TYPE_BASE = "https://edgerag.dev/problems/"


class Problem(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra)

    @property
    def type(self) -> str:
        return TYPE_BASE + self.slug

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail, **self.extra}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class BadRequest(Problem):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ValidationFailed(Problem):
    status, title, slug = 422, "Unprocessable Content", "validation"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail, errors=[dict(e) for e in errors])

    @classmethod
    def from_pydantic(cls, exc: Any) -> ValidationFailed:
        """From a ``pydantic.ValidationError`` (duck-typed: anything with ``errors()``)."""
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in errors[:5]) or "invalid input"
        return cls(detail, errors)


class RateLimited(Problem):
    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamFailure(Problem):
    status, title, slug = 502, "Bad Gateway", "upstream"


class ServiceUnavailable(Problem):
    status, title, slug = 503, "Service Unavailable", "unavailable"
