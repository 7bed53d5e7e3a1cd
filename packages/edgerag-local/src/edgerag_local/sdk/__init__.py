"""Local stand-ins for the Workers Python SDK (``workers``: Request, Response, fetch, streams).

- :mod:`.workers`: the stand-ins; :mod:`.http_client`: the outbound HTTP they use.
"""

from __future__ import annotations

from .workers import (
    OUTBOUND_ENV,
    ExecutionContext,
    ReadableStream,
    Request,
    Response,
    WorkerEntrypoint,
    asgi_fetch,
    check_outbound,
    fetch,
    install,
    normalize_method,
)

__all__ = [
    "OUTBOUND_ENV",
    "ExecutionContext",
    "ReadableStream",
    "Request",
    "Response",
    "WorkerEntrypoint",
    "asgi_fetch",
    "check_outbound",
    "fetch",
    "install",
    "normalize_method",
]
