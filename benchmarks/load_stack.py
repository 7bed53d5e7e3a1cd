"""The stack the load test drives: the whole local stack served over loopback, with optional faults.

    .venv/bin/python benchmarks/load_stack.py --state DIR --control FILE [--faults JSON] [--seed 7]

Started by ``load.py`` as a process of its own, so the load generator and the stack do not share an
interpreter (and its GIL). It serves exactly what ``edgerag dev`` and ``edgerag_local.runtime.threaded``
serve — the gateway and the presigned R2 endpoint on a free ``127.0.0.1`` port, the queue consumers on
their own thread — and writes ``{"base_url", "admin_token", "fake_provider"}`` as one JSON line to the
``--control`` file once it accepts connections (its stdout is the workers' log, one JSON line per
request, which nobody has to read). SIGINT or SIGTERM stops it the way ``edgerag dev`` stops
(uvicorn, then the consumers, running batches finishing first); it then appends ``{"faults": {...}}``,
what it injected, to the control file.

With ``--faults`` (rates: :class:`load_faults.FaultRates`) it also starts the policy-driven provider
server and routes two plans' chat through it (``MODELS_CONFIG`` below): ``standard`` falls back to the
local Workers AI stand-in, ``enterprise`` has no fallback (its failures reach the client); ``free``
keeps the stand-in. Provider calls get a ``--provider-timeout`` (10 s) timeout and one retry, so a
stall costs seconds, not the 30 s default. Every response to a request during which a gateway-side
fault was injected carries ``x-load-fault`` naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from edgerag_local.runtime.host import LocalStack
from edgerag_local.runtime.serving import R2_PREFIX, serve_app
from edgerag_local.runtime.stack import open_stack
from load_faults import (
    REQUEST_FAULTS,
    ConsumerCrashes,
    D1Faults,
    FaultRates,
    PolicyProvider,
    install_crash_boundary,
)

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = "@cf/meta/llama-3.1-8b-instruct"


def models_config(fake_base_url: str) -> str:
    """Plans ``standard`` and ``enterprise`` chat through the scripted provider (see the docstring)."""
    fake_model = {
        "provider": "fake",
        "model": "gpt-fake",
        "input_usd_per_mtok": 1,
        "output_usd_per_mtok": 2,
        "context_window": 32000,
    }
    stand_in = {
        "provider": "workers-ai",
        "input_usd_per_mtok": 0.282,
        "output_usd_per_mtok": 0.827,
        "context_window": 7968,
    }
    return json.dumps(
        {
            "providers": {
                "fake": {"kind": "openai", "base_url": fake_base_url, "api_key_secret": "FAKE_API_KEY"},
                "workers-ai": {"kind": "workers-ai"},
            },
            "models": {
                "chat": STAND_IN,
                "fallback_chat": [],
                "catalog": {"fake-gpt": fake_model, STAND_IN: stand_in},
                "plans": {
                    "standard": {"chat": "fake-gpt", "fallback_chat": [STAND_IN]},
                    "enterprise": {"chat": "fake-gpt", "fallback_chat": []},
                },
            },
        }
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _marking(app: Any) -> Any:
    """The served app, with ``x-load-fault`` on responses to requests that had a fault injected."""

    async def marked(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        faults: list[str] = []
        token = REQUEST_FAULTS.set(faults)

        async def send_marked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and faults:
                headers = [*message.get("headers", []), (b"x-load-fault", ",".join(faults).encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_marked)
        finally:
            REQUEST_FAULTS.reset(token)

    return marked


class _Server(uvicorn.Server):
    """uvicorn without its signal capture: it re-raises SIGINT after shutting down, which would
    cancel the stack's own shutdown (and the final report); :func:`serve` handles the signals."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _control(path: Path, message: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as control:
        control.write(json.dumps(message) + "\n")


def _install_faults(stack: LocalStack, rates: FaultRates, seed: int) -> dict[str, Any]:
    ingest = stack.workers["ingest"]
    db, ai = ingest.env.DB, ingest.env.AI  # the instances every worker shares (one per database)
    d1 = D1Faults(db, rates, seed)
    crashes = ConsumerCrashes(ai, db, rates, seed + 1)
    install_crash_boundary(ingest.module)
    return {"d1": d1.injected, "crashes": crashes.injected}


async def serve(args: argparse.Namespace) -> None:
    rates = FaultRates.from_mapping(json.loads(args.faults)) if args.faults else FaultRates()
    port = _free_port()
    async with contextlib.AsyncExitStack() as exits:
        extra: dict[str, dict[str, str]] = {}
        provider: PolicyProvider | None = None
        if rates.any:
            provider = await exits.enter_async_context(PolicyProvider(rates, args.seed + 2))
            extra["dedalus"] = {
                "MODELS_CONFIG": models_config(provider.openai_base_url),
                "FAKE_API_KEY": "sk-load-test",
                "PROVIDER_TIMEOUT_S": str(args.provider_timeout),
                "PROVIDER_MAX_RETRIES": "1",
                "BREAKER_COOLDOWN_S": "5",
            }
        endpoint = f"http://127.0.0.1:{port}{R2_PREFIX}"
        stack = open_stack(ROOT, state_dir=args.state, extra_vars=extra, r2_endpoint=endpoint)
        injected = _install_faults(stack, rates, args.seed) if rates.any else {}
        token = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
        server = _Server(
            uvicorn.Config(_marking(serve_app(stack)), host="127.0.0.1", port=port, log_level="error")
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
        await stack.start()
        try:
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no started event
                await asyncio.sleep(0.01)
            ready = {
                "base_url": f"http://127.0.0.1:{port}",
                "admin_token": token,
                "fake_provider": provider is not None,
            }
            _control(args.control, ready)
            await task
        finally:
            await stack.stop()
            stack.close()
        report: dict[str, Any] = {name: dict(counter) for name, counter in injected.items()}
        if provider is not None:
            report["provider"] = dict(provider.served)
            report["provider_hangups"] = provider.hangups
        _control(args.control, {"faults": report})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="a fresh state directory")
    parser.add_argument("--faults", default="", help="JSON object of fault rates (load_faults.FaultRates)")
    parser.add_argument("--control", type=Path, required=True, help="where the ready/faults lines go")
    parser.add_argument(
        "--provider-timeout",
        type=float,
        default=10.0,
        help="dedalus's PROVIDER_TIMEOUT_S with faults: a stall costs this per attempt; on a saturated "
        "loop a shorter one times out calls the provider would have answered",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
