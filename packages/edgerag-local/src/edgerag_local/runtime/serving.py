"""What the local host serves on its one port: the gateway, with R2's presigned endpoint mounted at
:data:`~edgerag_local.r2.presigned.R2_PREFIX` (where ``R2_ENDPOINT`` points locally)."""

from __future__ import annotations

import time
from typing import Any

from edgerag_local.r2.presigned import ASGI, R2_PREFIX, PresignedR2
from edgerag_local.runtime.host import LocalStack

__all__ = ["R2_PREFIX", "presigned_app_for", "serve_app"]


def presigned_app_for(stack: LocalStack, worker: str = "gateway") -> PresignedR2:
    """The presigned endpoint for ``worker``'s R2 buckets, accepting the key pair its env holds."""
    runtime = stack.workers[worker]
    env = runtime.env
    buckets = {r2.bucket_name: stack.pool.r2(r2.bucket_name) for r2 in runtime.config.r2}
    keys = {str(env.R2_ACCESS_KEY_ID): str(env.R2_SECRET_ACCESS_KEY)} if "R2_ACCESS_KEY_ID" in env else {}
    return PresignedR2(buckets, keys, prefix=R2_PREFIX, clock=stack.pool.clock or time.time)


def serve_app(stack: LocalStack) -> ASGI:
    """The gateway's ASGI app with the presigned R2 endpoint mounted at :data:`R2_PREFIX`."""
    gateway = stack.asgi("gateway")
    r2 = presigned_app_for(stack)

    async def app(scope: dict[str, Any], receive: ASGI, send: ASGI) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == R2_PREFIX or path.startswith(R2_PREFIX + "/")):
            await r2(scope, receive, send)
        else:
            await gateway(scope, receive, send)

    return app
