"""The gateway's observability boundary: request id, one log line and one data point per request.

:class:`ObservabilityMiddleware` (pure ASGI, installed by :func:`gateway.app.build_app`) runs around
every route:

1. takes the request id from ``X-Request-Id`` or ``traceparent`` or mints one
   (:func:`edgerag.observability.request_id_from`), and stores it in ``scope`` for the error
   handler that runs outside middleware (the 500 problem);
2. makes an :class:`~edgerag.observability.Observation` current, and hands the routes an
   instrumented env (spans for D1 batches, Vectorize and Workers AI calls);
3. adds ``X-Request-Id`` to the response headers (problem bodies carry it as ``request_id``, see
   :mod:`gateway.errors`);
4. when the response is over (streams included), writes the request's log line and metrics point,
   with the matched route's template (``/v1/documents/{document_id}``), never the raw path.

The tenant is annotated by authentication (:mod:`gateway.deps`); the cache, retrieval and dedalus
client annotate what they did.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from edgerag.observability import Observation, finish, observe, request_id_from
from edgerag.observability.instrument import instrument_env

__all__ = ["REQUEST_ID_SCOPE_KEY", "ObservabilityMiddleware", "route_template"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REQUEST_ID_SCOPE_KEY = "edgerag.request_id"
_CONVERTOR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[A-Za-z_][A-Za-z0-9_]*\}")


def route_template(scope: Scope) -> str:
    """The path template of the route that matched (convertors dropped), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return _CONVERTOR.sub(r"{\1}", path)


class ObservabilityMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])
        }
        obs = Observation(
            worker="gateway", kind="request", request_id=request_id_from(headers), method=scope.get("method")
        )
        scope[REQUEST_ID_SCOPE_KEY] = obs.request_id
        env = scope.get("env")
        if env is not None:
            scope["env"] = instrument_env(env)
        header = (b"x-request-id", obs.request_id.encode("latin-1"))

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                obs.status = int(message["status"])
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*kept, header]
            await send(message)

        with observe(obs):
            try:
                await self.app(scope, receive, send_with_id)
            except BaseException as exc:
                if obs.status is None:
                    # An unexpected error answers 500 (outside this middleware); a cancelled request
                    # (the client went away) never got an answer: 499, as proxies log it.
                    obs.status = 500 if isinstance(exc, Exception) else 499
                obs.error = obs.error or type(exc).__name__
                raise
            finally:
                obs.route = route_template(scope)
                finish(obs, env)
