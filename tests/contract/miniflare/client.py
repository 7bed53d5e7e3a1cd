"""Start ``bridge.mjs`` and speak its loopback JSON: one Miniflare (workerd) per test session.

Values cross as JSON with tags for what JSON cannot carry; :func:`encode` turns Python arguments
into what Pyodide's FFI would hand the binding (``bytes`` -> ``Uint8Array``, ``datetime`` -> ``Date``,
an ``int`` beyond 2**53 -> ``BigInt``, keyword arguments -> a trailing options object) and
:func:`decode` turns results into what the Workers SDK hands back (objects -> :class:`AttrDict`,
``ArrayBuffer`` -> ``memoryview``). A JS error comes back as its class and message and is raised as
the Python exception Pyodide would surface for it, with workerd's text unchanged.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import select
import shutil
import subprocess
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgerag.jsdict import AttrDict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BRIDGE = HERE / "bridge.mjs"
MAX_SAFE_INTEGER = 2**53 - 1
START_TIMEOUT = 60.0


class BridgeUnavailableError(RuntimeError):
    """Node or Miniflare is missing, or the bridge did not start."""


class JsError(Exception):
    """A JS ``Error`` that no binding-specific class claims."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def _miniflare_installed() -> bool:
    return (ROOT / "node_modules" / "miniflare" / "package.json").is_file()


@dataclass
class Bridge:
    """A running ``bridge.mjs``; :meth:`post` is synchronous (tests call it from async code too)."""

    process: subprocess.Popen[bytes]
    port: int
    worker: str
    state_dir: Path

    def __post_init__(self) -> None:
        self._connections: dict[int, http.client.HTTPConnection] = {}

    @classmethod
    def start(
        cls,
        state_dir: Path,
        queues: Mapping[str, Mapping[str, Any]] | None = None,
        pools: Mapping[str, int] | None = None,
    ) -> Bridge:
        """Start the bridge with these queues and ``pools[kind]`` bindings ``<kind>_<n>`` of each kind."""
        node = shutil.which("node")
        if node is None:
            raise BridgeUnavailableError(
                "the miniflare contract backend needs Node (>= 20) on PATH; run scripts/setup, "
                "or deselect it with -k 'not miniflare'"
            )
        if not _miniflare_installed():
            raise BridgeUnavailableError(
                f"miniflare is not installed under {ROOT / 'node_modules'}; run scripts/setup (npm ci)"
            )
        state_dir.mkdir(parents=True, exist_ok=True)
        log = (state_dir / "bridge.log").open("wb")
        process = subprocess.Popen(
            [
                node,
                str(BRIDGE),
                str(state_dir / "state"),
                json.dumps({"queues": dict(queues or {}), "pools": dict(pools or {})}),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "NO_COLOR": "1"},
        )
        log.close()
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        line = process.stdout.readline() if ready else b""
        if not line:
            process.kill()
            process.wait()
            tail = (state_dir / "bridge.log").read_text(errors="replace")[-3000:]
            raise BridgeUnavailableError(f"the Miniflare bridge did not start:\n{tail}")
        ready_line = json.loads(line)
        return cls(process, int(ready_line["port"]), ready_line["worker"], state_dir)

    def stop(self) -> None:
        for connection in self._connections.values():
            connection.close()
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the bridge disposes of Miniflare and exits on EOF
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def post(self, route: str, body: Mapping[str, Any], port: int | None = None) -> Any:
        """POST JSON to the bridge (or, with ``port``, to the probe worker) and return its answer."""
        port = self.port if port is None else port
        payload = json.dumps(body, allow_nan=False).encode()
        for attempt in (1, 2):
            connection = self._connections.get(port)
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                self._connections[port] = connection
            try:
                connection.request("POST", route, payload, {"content-type": "application/json"})
                answer = json.loads(connection.getresponse().read())
                break
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                del self._connections[port]
                if attempt == 2 or self.process.poll() is not None:
                    raise
        if isinstance(answer, dict) and answer.get("error", {}).get("name") == "BridgeError":
            raise RuntimeError(f"Miniflare bridge failed: {answer['error']['message']}")
        return answer

    @property
    def worker_port(self) -> int:
        port = urlsplit(self.worker).port
        assert port is not None
        return port

    def declare_queues(self, queues: Mapping[str, Mapping[str, Any]]) -> None:
        """Add queues (producer ``Q_<name>`` and a consumer with these options); restarts workerd."""
        self.worker = self.post("/queues/declare", {"queues": queues})["worker"]

    def many(
        self, binding: str, calls: list[tuple[str, list[Any]]], errors: Callable[[str, str], Exception]
    ) -> None:
        """Perform ``env[binding].<method>(*args)`` for each call, in workerd, 50 at a time (set-up)."""
        answer = self.post(
            "/many", {"binding": binding, "calls": [[m, a] for m, a in calls]}, port=self.worker_port
        )
        if "error" in answer:
            raise errors(answer["error"]["name"], answer["error"]["message"])

    def call(
        self,
        binding: str,
        chain: list[tuple[str, list[Any]]],
        errors: Callable[[str, str], Exception],
        *,
        discard: bool = False,
    ) -> Any:
        """Perform ``env[binding].m1(*a1).m2(*a2)...`` in workerd and return the (tagged) result;
        ``discard`` performs the chain for its errors only (the last call is not awaited)."""
        body = {"binding": binding, "chain": [[m, a] for m, a in chain], "discard": discard}
        answer = self.post("/call", body, port=self.worker_port)
        if "error" in answer:
            raise errors(answer["error"]["name"], answer["error"]["message"])
        return answer["ok"]


def js_error(binding_error: Callable[[str], Exception]) -> Callable[[str, str], Exception]:
    """Map a JS error to what Pyodide raises: TypeError/RangeError/SyntaxError by class, else the
    binding's error class (its message is the binding's text, e.g. ``D1_ERROR: ...``)."""

    def make(name: str, message: str) -> Exception:
        if name == "TypeError":
            return TypeError(message)
        if name in ("RangeError", "SyntaxError"):
            return ValueError(message)
        if name == "Error":
            return binding_error(message)
        return JsError(name, message)

    return make


# ------------------------------------------------------------------------------------- encoding


def _encode_sync(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"$bigint": str(value)} if abs(value) > MAX_SAFE_INTEGER else value
    if isinstance(value, float):
        return (
            value
            if math.isfinite(value)
            else {"$num": repr(value).replace("inf", "Infinity").replace("nan", "NaN")}
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return {"$date": round(aware.timestamp() * 1000)}
    if isinstance(value, Mapping):
        return {str(k): _encode_sync(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_sync(v) for v in value]
    return {"$pyobject": repr(value)}


async def encode(value: Any) -> Any:
    """Python -> tagged JSON; an async iterable becomes a ``ReadableStream`` of its chunks."""
    if isinstance(value, AsyncIterable):
        known = getattr(value, "known_length", None)  # a body workerd gave us: a FixedLengthStream
        chunks = [chunk async for chunk in value]
        tagged: dict[str, Any] = {"$stream": [base64.b64encode(bytes(c)).decode() for c in chunks]}
        if known is not None:
            tagged["length"] = known
        return tagged
    if isinstance(value, Mapping):
        return {str(k): await encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await encode(v) for v in value]
    return _encode_sync(value)


async def js_args(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[Any]:
    """Positional arguments plus keyword arguments as a trailing options object, as Pyodide passes them.

    A keyword argument of ``None`` is left out: Pyodide hands ``None`` over as ``undefined``, which
    an options object treats as absent (``list(cursor=None)``), whereas ``null`` would be refused.
    """
    encoded = [await encode(a) for a in args]
    options = {k: v for k, v in kwargs.items() if v is not None}
    if options:
        encoded.append(await encode(options))
    return encoded


def js_args_sync(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[Any]:
    encoded = [_encode_sync(a) for a in args]
    options = {k: v for k, v in kwargs.items() if v is not None}
    if options:
        encoded.append(_encode_sync(options))
    return encoded


class ByteStream:
    """A ``ReadableStream`` as the SDK hands it over: an async iterator of ``bytes`` chunks, once."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks: list[bytes] | None = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._chunks is None:
            raise TypeError("This ReadableStream is disturbed (has already been read from)")
        chunks, self._chunks = self._chunks, None
        return _iterate(chunks)


async def _iterate(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def decode_bytes(tagged: Mapping[str, Any]) -> bytes:
    return base64.b64decode(tagged["$bytes"])


def decode(value: Any, special: Callable[[str, Any], Any] | None = None) -> Any:
    """Tagged JSON -> Python as the Workers SDK converts JS values; ``special`` handles other tags."""
    if isinstance(value, list):
        return [decode(v, special) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return float(value)  # Pyodide: a JS number that is not a safe integer becomes a float
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag,) = value
        if tag == "$bytes":
            return memoryview(decode_bytes(value))
        if tag == "$date":
            return datetime.fromtimestamp(value["$date"] / 1000, tz=UTC)
        if tag == "$num":
            return float(value["$num"].replace("Infinity", "inf"))
        if tag == "$bigint":
            return int(value["$bigint"])
        if tag == "$undefined":
            return None
        if tag == "$stream":
            return ByteStream([decode_bytes(c) for c in value["$stream"]])
        if tag == "$map":
            return AttrDict({k: decode(v, special) for k, v in value["$map"]})
        if tag.startswith("$") and special is not None:
            return special(tag, value[tag])
    return AttrDict({k: decode(v, special) for k, v in value.items()})
