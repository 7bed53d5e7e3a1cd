"""Run the local Cloudflare API emulator on a loopback port, in a background thread or standalone.

::

    with CloudflareApiEmulator(state_dir) as api:          # binds 127.0.0.1 on a free port
        api.add_token("test-token", account_id)             # what wrangler and edgerag_ops send
        env = {"CLOUDFLARE_API_BASE_URL": api.base_url, ...}
        subprocess.run(["npx", "wrangler", "deploy"], env=env)
        api.inject.set_var(account_id, "acme-edgerag-gateway-dev", "LOG_LEVEL", "x")  # inject drift

It only ever binds a loopback address: it is test infrastructure that accepts any request from the
local machine. ``python -m edgerag_local.cfapi --port 8788 --state .edgerag/cfapi`` runs it in the
foreground for manual use (``scripts/demo-deploy-transcript`` does this).
"""

from __future__ import annotations

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from .http import API_PREFIX, ApiError, ApiRequest, Router
from .inject import Injector
from .routes import build_router
from .state import ApiState
from .zones import add_zone

__all__ = ["CloudflareApiEmulator"]


def _handler_class(emulator: CloudflareApiEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, content_type = emulator.dispatch(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines would interleave with test output; the router keeps its own call log.
            return

    return Handler


class CloudflareApiEmulator:
    """The emulator: state + router + a threaded HTTP server bound to a loopback address."""

    def __init__(
        self, state_dir: Path | str | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the Cloudflare API emulator only binds loopback addresses, not {host!r}")
        self.state = ApiState(Path(state_dir) if state_dir is not None else None)
        self.router: Router = build_router(self.state)
        self._lock = threading.RLock()
        self.inject = Injector(self.state, self._lock)
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The value for ``CLOUDFLARE_API_BASE_URL`` (ends in ``/client/v4``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    def add_token(self, token: str, *accounts: str) -> None:
        """Accept ``token`` for ``accounts`` (no accounts: a token that verifies but can reach none)."""
        with self._lock:
            self.state.add_token(token, list(accounts))

    def add_zone(self, account: str, name: str) -> str:
        """Set up domain ``name`` in ``account`` (routes and custom domains need a zone); returns its id."""
        with self._lock:
            zone_id = add_zone(self.state, account, name)
            self.state.save()
            return zone_id

    def dispatch(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        # One lock for the whole account: requests are tiny and serialising them keeps state simple.
        with self._lock:
            result = self.router.dispatch(method, path, headers, body, self._authorize)
            if method != "GET":
                self.state.save()
            return result

    def _authorize(self, request: ApiRequest) -> None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(400, 6003, "Invalid request headers")
        token = header[len("Bearer ") :].strip()
        self.state.check_token(token, request)

    def start(self) -> CloudflareApiEmulator:
        # A short poll interval keeps stop() quick (shutdown waits for the loop to notice).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cfapi-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self.state.close()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self.state.close()

    def __enter__(self) -> CloudflareApiEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
