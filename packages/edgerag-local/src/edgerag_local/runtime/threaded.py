"""The whole local stack served over real HTTP from a background thread, for clients that block.

Tests that drive the API with a synchronous client (schemathesis's CLI, the official ``openai`` SDK, a
browser) need a real server on a loopback port while the test itself keeps running. :func:`serve_stack`
opens a :class:`~edgerag_local.runtime.host.LocalStack` inside a thread that owns its event loop, starts the
queue consumers and a uvicorn server on a free ``127.0.0.1`` port, and yields a :class:`ServedStack`
once the server accepts connections; leaving the context stops uvicorn, the consumers and the stack.

    with serve_stack(root, state_dir=tmp / "state") as served:
        requests.get(f"{served.base_url}/health")

Only loopback is ever bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from edgerag_local.runtime.serving import R2_PREFIX, serve_app
from edgerag_local.runtime.stack import open_stack

__all__ = ["ServedStack", "serve_stack"]

_START_TIMEOUT_S = 60  # guards against a stack that never comes up; not a performance bound


@dataclass(frozen=True)
class ServedStack:
    base_url: str
    admin_token: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serve_stack(
    root: Path,
    *,
    state_dir: Path,
    extra_vars: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "edgerag-stack",
) -> Iterator[ServedStack]:
    port = _free_port()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            # As `edgerag dev` serves it: the gateway plus the presigned R2 endpoint under /r2.
            endpoint = f"http://127.0.0.1:{port}{R2_PREFIX}"
            stack = open_stack(root, state_dir=state_dir, extra_vars=extra_vars, r2_endpoint=endpoint)
            holder["token"] = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
            server = uvicorn.Server(
                uvicorn.Config(serve_app(stack), host="127.0.0.1", port=port, log_level="warning")
            )
            holder["server"] = server
            await stack.start()
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no started event
                await asyncio.sleep(0.01)
            ready.set()
            try:
                await task
            finally:
                await stack.stop()
                stack.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller below
            holder["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    if not ready.wait(_START_TIMEOUT_S) or "token" not in holder or holder.get("error"):
        raise RuntimeError(f"the local stack did not start: {holder.get('error')!r}")
    try:
        yield ServedStack(f"http://127.0.0.1:{port}", str(holder["token"]))
    finally:
        server = holder.get("server")
        if isinstance(server, uvicorn.Server):
            server.should_exit = True
        thread.join(30)
