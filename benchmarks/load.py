"""Load test of the whole local stack: concurrent tenants mixing search, chat, uploads and status polls.

    .venv/bin/python benchmarks/load.py [--clients 50] [--duration 60] [--faults] [--json out.json]

Not a test; prints markdown tables (tests/e2e/test_load_short.py runs it briefly in CI and asserts on
its ``--json`` counts). What it does:

1. Starts the stack as its own process (``load_stack.py``: what ``edgerag dev`` serves, on a free
   loopback port, in a fresh state directory), with ``--faults`` injecting D1 errors, ingest consumer
   crashes (while embedding, and after the chunk write before the ack) and provider 500s and stalls.
2. Creates one tenant per client through the admin API, each with a key (read, write, chat) on the
   ``standard`` plan (1,000 model-backed requests an hour), plus ONE over-limit tenant whose hourly
   limit is set to ``--over-limit-quota`` requests (``PUT /v1/admin/tenants/{t}/limits``): its client
   keeps chatting (at least quota + 1 times), and every 429 ``request-limit`` it gets is an *intended*
   429, counted apart.
   Clients pace themselves to ``--client-rps`` (default 4/s, 240/min), well under the per-minute
   ``RATE_LIMITER`` binding's 600/min per tenant, so any other 429 is a finding. With ``--faults``
   the tenants are spread over three plans: ``free`` (Workers AI stand-in), ``standard`` (scripted
   provider, falling back to the stand-in) and ``enterprise`` (scripted provider, no fallback).
3. For ``--duration`` seconds every client picks, per request: search (hybrid), a chat message as JSON
   or as SSE (read to its ``done``/``error`` event), an upload (JSON text or a multipart file), or a
   status poll of one of its documents. Requests in flight at the deadline finish.
4. Polls every accepted upload (202) until ``ready``/``failed``, at most ``--settle`` seconds; stops
   the stack; audits its state (``load_audit.py``): chunk rows, FTS rows and vectors per document
   against the chunker's count for the text sent, documents stuck in ``queued``/``processing``, chat
   answers left ``pending``.

Outcome of each response: ``ok`` (2xx; an SSE stream ending in ``done``), ``intended_429`` (the
over-limit tenant's ``request-limit`` problems), ``injected`` (with ``--faults`` only: a 5xx
``application/problem+json`` on a request the stack marked ``x-load-fault``, a chat 502/503/504 problem
or SSE ``error`` event of a tenant routed to the faulty provider — clean failures of injected faults)
and ``unintended`` (everything else: other statuses, bodies that are not problems, transport errors,
timeouts past ``--request-timeout``, streams that end without a terminal event). Exit status 1 when
anything is unintended, lost, duplicated or inconsistent.

In fault mode a document whose every delivery failed (``max_retries`` + 1 = 4) is designed to end
``failed`` with the reason "ingestion gave up after the ingest queue's retries"; the report counts
those apart from lost ones (with the default rates, a document fails only if all four of its
deliveries hit a fault).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from edgerag.sse import SseParser
from load_audit import Audit, audit, expected_chunks
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PROBLEM = "application/problem+json"
REQUEST_LIMIT = "https://edgerag.dev/problems/request-limit"
# Moderate rates: enough faults to exercise every recovery path many times in a minute, low enough
# that most work succeeds (see load_faults.FaultRates).
DEFAULT_FAULTS = {
    "d1_gateway": 0.01,
    "d1_ingest": 0.01,
    "crash_embed": 0.05,
    "crash_after_write": 0.1,
    "provider_500": 0.15,
    "provider_stall": 0.05,
    "crash_after_first_writes": 1,
    "provider_first_failures": True,
}
WEIGHTS = {"search": 30, "chat_json": 12, "chat_sse": 12, "upload": 10, "status": 36}
FAULTY_PLANS = ("standard", "enterprise")  # routed to the scripted provider in fault mode
WORDS = (
    "rocket engine nozzle thrust turbopump combustion chamber kerosene oxygen booster landing grid fins "
    "sourdough yeast oven bread flour starter retrieval index vector query document chunk token "
    "embedding model search ranking gateway tenant queue worker binding latency batch storage stream "
    "isolate runtime edge cache score fusion keyword dense sparse hybrid filter namespace metadata"
).split()
QUESTIONS = (
    "How does the nozzle make thrust?",
    "What feeds the combustion chamber?",
    "How does sourdough rise?",
    "Which engines burn kerosene and oxygen?",
    "What steers the booster when it lands?",
)


@dataclass
class Sample:
    route: str
    status: int  # 0: no HTTP response (transport error or timeout)
    outcome: str  # ok | intended_429 | injected | unintended
    ms: float
    detail: str = ""
    request_id: str = ""  # X-Request-Id of the response: find the request in the stack's log


@dataclass
class TenantClient:
    name: str
    tenant_id: str
    plan: str
    http: httpx.AsyncClient
    over_limit: bool = False
    session: str | None = None
    documents: dict[str, str] = field(default_factory=dict)  # id -> last status seen


@dataclass
class Run:
    args: argparse.Namespace
    faults: bool
    samples: list[Sample] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # document id -> expected chunks
    owner: dict[str, TenantClient] = field(default_factory=dict)
    tenants: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # the stack's own GET /metrics, after the run

    def record(self, sample: Sample) -> None:
        self.samples.append(sample)


# ------------------------------------------------------------------------------------ classifying


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    if not response.headers.get("content-type", "").startswith(PROBLEM):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and "type" in body and "status" in body else None


def classify(run: Run, client: TenantClient, route: str, response: httpx.Response) -> tuple[str, str]:
    status = response.status_code
    if 200 <= status < 300:
        return "ok", ""
    problem = _problem(response)
    kind = str(problem.get("type", "")) if problem else "(not a problem)"
    if status == 429 and client.over_limit and problem and kind == REQUEST_LIMIT:
        return ("intended_429", kind) if response.headers.get("retry-after") else ("unintended", kind)
    if run.faults and status >= 500 and problem is not None:
        if response.headers.get("x-load-fault"):
            return "injected", f"{kind} ({response.headers['x-load-fault']})"
        if route.startswith("chat") and client.plan in FAULTY_PLANS and status in (502, 503, 504):
            return "injected", f"{kind} (provider)"
    return "unintended", f"{kind}: {(problem or {}).get('detail', response.text[:120])}"


# ------------------------------------------------------------------------------------ requests


async def timed(
    run: Run, client: TenantClient, route: str, method: str, url: str, **kwargs: Any
) -> httpx.Response | None:
    began = time.perf_counter()
    try:
        response = await client.http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        run.record(Sample(route, 0, "unintended", (time.perf_counter() - began) * 1000, repr(exc)[:160]))
        return None
    outcome, detail = classify(run, client, route, response)
    ms = (time.perf_counter() - began) * 1000
    request_id = response.headers.get("x-request-id", "")
    run.record(Sample(route, response.status_code, outcome, ms, detail, request_id))
    return response


def _text(rng: random.Random, marker: str) -> str:
    """English-like filler of 1-6 KB (1-4 chunks) with a unique marker, so no two uploads dedupe."""
    target = rng.randint(1000, 6000)
    sentences = [f"Load document {marker}."]
    size = len(sentences[0])
    while size < target:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)


async def upload(run: Run, client: TenantClient, rng: random.Random) -> None:
    marker = f"{client.name}-{rng.getrandbits(48):012x}"
    text = _text(rng, marker)
    if rng.random() < 0.5:
        response = await timed(
            run, client, "upload", "POST", "/v1/documents", json={"title": f"doc {marker}", "text": text}
        )
    else:
        files = {"file": (f"{marker}.txt", text.encode(), "text/plain")}
        response = await timed(run, client, "upload", "POST", "/v1/documents", files=files)
    if response is not None and response.status_code == 202:
        document = response.json()["document"]
        client.documents[document["id"]] = document["status"]
        run.accepted[document["id"]] = expected_chunks(text)
        run.owner[document["id"]] = client


async def poll_status(run: Run, client: TenantClient, rng: random.Random) -> None:
    waiting = [d for d, status in client.documents.items() if status not in ("ready", "failed")]
    candidates = waiting or list(client.documents)
    if not candidates:
        await upload(run, client, rng)
        return
    document_id = rng.choice(candidates)
    response = await timed(run, client, "status", "GET", f"/v1/documents/{document_id}")
    if response is not None and response.status_code == 200:
        client.documents[document_id] = response.json()["status"]


async def search(run: Run, client: TenantClient, rng: random.Random) -> None:
    query = " ".join(rng.sample(WORDS, 3))
    await timed(run, client, "search", "POST", "/v1/search", json={"query": query, "top_k": 5})


async def ensure_session(run: Run, client: TenantClient) -> str | None:
    if client.session is None:
        response = await timed(run, client, "chat_session", "POST", "/v1/chat/sessions", json={})
        if response is None or response.status_code != 201:
            return None
        client.session = str(response.json()["id"])
    return client.session


async def chat_json(run: Run, client: TenantClient, rng: random.Random) -> None:
    session = await ensure_session(run, client)
    if session is not None:
        body = {"content": rng.choice(QUESTIONS), "stream": False}
        await timed(run, client, "chat_json", "POST", f"/v1/chat/sessions/{session}/messages", json=body)


async def chat_sse(run: Run, client: TenantClient, rng: random.Random) -> None:
    session = await ensure_session(run, client)
    if session is None:
        return
    route, began = "chat_sse", time.perf_counter()
    body = {"content": rng.choice(QUESTIONS), "stream": True}
    headers = {"accept": "text/event-stream"}
    terminal: str | None = None
    detail = ""
    try:
        async with client.http.stream(
            "POST", f"/v1/chat/sessions/{session}/messages", json=body, headers=headers
        ) as response:
            if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
                "text/event-stream"
            ):
                await response.aread()
                outcome, detail = classify(run, client, route, response)
                run.record(Sample(route, response.status_code, outcome, _ms(began), detail))
                return
            parser = SseParser()
            async for chunk in response.aiter_bytes():
                for event in parser.feed(chunk):
                    if event.event in ("done", "error"):
                        terminal = event.event
                        if event.event == "error":
                            detail = _error_code(event.data)
    except httpx.HTTPError as exc:
        run.record(Sample(route, 0, "unintended", _ms(began), repr(exc)[:160]))
        return
    if terminal == "done":
        outcome = "ok"
    elif terminal == "error" and run.faults:
        outcome, detail = "injected", f"error event {detail}"
    else:
        outcome, detail = "unintended", f"stream ended with {terminal or 'no terminal event'} {detail}"
    run.record(Sample(route, 200, outcome, _ms(began), detail))


def _error_code(data: str) -> str:
    try:
        payload = json.loads(data)
    except ValueError:
        return data[:60]
    return str(payload.get("code") or payload.get("type") or "") if isinstance(payload, dict) else ""


def _ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000


ACTIONS = {
    "search": search,
    "chat_json": chat_json,
    "chat_sse": chat_sse,
    "upload": upload,
    "status": poll_status,
}


async def drive(run: Run, client: TenantClient, deadline: float, seed: int) -> None:
    """Requests until the deadline, paced to ``--client-rps``. Whatever the deadline, a tenant client
    first sends one request of every kind (upload first, so it has something to search and poll) and
    the over-limit client sends one more than its quota, so even a short run on a slow machine takes
    every path; the rest of the mix is drawn at random with :data:`WEIGHTS`."""
    rng = random.Random(seed)
    interval = 1.0 / run.args.client_rps
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    if client.over_limit:
        first = ["chat_json"] * (run.args.over_limit_quota + 1)
    else:
        first = ["upload", "search", "chat_json", "chat_sse", "status"]
    while first or time.monotonic() < deadline:
        began = time.monotonic()
        if first:
            action = first.pop(0)
        else:
            action = "chat_json" if client.over_limit else rng.choices(names, weights)[0]
        await ACTIONS[action](run, client, rng)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))


async def settle(run: Run, seconds: float) -> None:
    """Poll every accepted upload until it is ready or failed (bounded); not counted as load."""
    deadline = time.monotonic() + seconds
    waiting = {
        d
        for d, s in ((d, run.owner[d].documents.get(d)) for d in run.accepted)
        if s not in ("ready", "failed")
    }
    while waiting and time.monotonic() < deadline:
        for document_id in sorted(waiting):
            client = run.owner[document_id]
            try:
                response = await client.http.get(f"/v1/documents/{document_id}")
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                status = response.json()["status"]
                client.documents[document_id] = status
                if status in ("ready", "failed"):
                    waiting.discard(document_id)
        if waiting:
            await asyncio.sleep(0.5)


async def scrape_metrics(base: str) -> dict[str, Any]:
    """The stack's view of the run from its ``GET /metrics`` (Prometheus text): the gateway's requests
    by status class, its 5xx and 429 counters, the cache hit rate and the ingest queue's depth."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        response = await http.get("/metrics")
    if response.status_code != 200:
        return {"error": f"GET /metrics answered {response.status_code}"}
    view: dict[str, Any] = {"requests_by_class": Counter()}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "requests_total" and labels.get("worker") == "gateway":
                view["requests_by_class"][labels.get("status", "?")[:1] + "xx"] += int(value)
            elif sample.name == "errors_total" and labels.get("worker") == "gateway":
                view["gateway_errors_total"] = view.get("gateway_errors_total", 0) + int(value)
            elif sample.name == "rate_limited_total":
                view["rate_limited_total"] = view.get("rate_limited_total", 0) + int(value)
            elif sample.name == "cache_hit_rate":
                view["cache_hit_rate"] = round(value, 3)
            elif sample.name == "ingest_queue_depth":
                view.setdefault("ingest_queue_depth", {})[labels.get("queue", "?")] = int(value)
    view["requests_by_class"] = dict(view["requests_by_class"])
    return view


# ------------------------------------------------------------------------------------ setup


async def _setup_call(
    admin: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    """An admin call of the set-up, retried on 5xx: with ``--faults`` the stack's D1 faults hit the
    admin API too, and the set-up is not what is measured. 409 is returned for the caller to resolve."""
    for _ in range(10):
        response = await admin.request(method, url, json=body)
        if response.status_code < 500:
            if response.status_code != 409:
                response.raise_for_status()
            return response
        await asyncio.sleep(0.2)
    response.raise_for_status()
    return response


async def make_tenants(run: Run, base: str, admin_token: str) -> list[TenantClient]:
    admin = httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {admin_token}"}, timeout=60)
    clients: list[TenantClient] = []
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    try:
        plans = ("free", "standard", "enterprise") if run.faults else ("standard",)
        specs = [(f"load-{i:03d}", plans[i % len(plans)], False) for i in range(run.args.clients)]
        specs.append(("load-over-limit", "free", True))  # the Workers AI stand-in: quick answers
        for name, plan, over in specs:
            created = await _setup_call(admin, "POST", "/v1/admin/tenants", {"name": name, "plan": plan})
            if created.status_code == 409:  # an earlier attempt's 500 came after the tenant was stored
                created = await _setup_call(admin, "GET", f"/v1/admin/tenants/{name}")
            tenant_id = created.json()["id"]
            scopes = {"name": "load", "scopes": ["read", "write", "chat"]}
            key = await _setup_call(admin, "POST", f"/v1/admin/tenants/{tenant_id}/keys", scopes)
            if over:
                quota = {"requests_per_hour": run.args.over_limit_quota}
                await _setup_call(admin, "PUT", f"/v1/admin/tenants/{tenant_id}/limits", quota)
            http = httpx.AsyncClient(
                base_url=base,
                headers={"authorization": f"Bearer {key.json()['key']}"},
                timeout=run.args.request_timeout,
                limits=limits,
            )
            clients.append(TenantClient(name, tenant_id, plan, http, over_limit=over))
    finally:
        await admin.aclose()
    return clients


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    control: Path
    log: Path
    ready: dict[str, Any]

    def stop(self) -> dict[str, Any]:
        """SIGINT (as Ctrl-C stops ``edgerag dev``), then what the stack says it injected."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for line in reversed(self.control.read_text().splitlines()):
            if line.startswith('{"faults"'):
                return dict(json.loads(line)["faults"])
        return {}


def start_stack(
    root: Path, faults: dict[str, float] | None, seed: int, provider_timeout: float = 10.0
) -> StackProcess:
    """``load_stack.py`` in its own process; its log (stdout and stderr) goes to ``root/stack.log``."""
    control, log = root / "control.jsonl", root / "stack.log"
    command = [sys.executable, str(HERE / "load_stack.py"), "--state", str(root / "state")]
    command += ["--control", str(control), "--seed", str(seed)]
    if faults:
        command += ["--faults", json.dumps(faults), "--provider-timeout", str(provider_timeout)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120  # guards against a stack that never starts; not a measurement
    while time.monotonic() < deadline and process.poll() is None:
        lines = control.read_text().splitlines() if control.exists() else []
        if lines:
            return StackProcess(process, control, log, json.loads(lines[0]))
        time.sleep(0.1)
    process.kill()
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the load stack did not start (exit status {process.poll()}):\n{tail}")


# ------------------------------------------------------------------------------------ report


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def summarize(run: Run, audit_result: Audit, injected: dict[str, Any], wall_s: float) -> dict[str, Any]:
    routes: dict[str, dict[str, Any]] = {}
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for sample in run.samples:
        by_route[sample.route].append(sample)
    for route, samples in sorted(by_route.items()):
        ok = [s.ms for s in samples if s.outcome == "ok"]
        outcomes = Counter(s.outcome for s in samples)
        routes[route] = {
            "requests": len(samples),
            **{name: outcomes.get(name, 0) for name in ("ok", "intended_429", "injected", "unintended")},
            "p50_ms": round(pct(ok, 0.50), 1),
            "p95_ms": round(pct(ok, 0.95), 1),
            "p99_ms": round(pct(ok, 0.99), 1),
        }
    statuses = Counter((s.route, s.status, s.outcome, s.detail) for s in run.samples if s.outcome != "ok")
    total = Counter(s.outcome for s in run.samples)
    return {
        "clients": run.args.clients,
        "duration_s": run.args.duration,
        "faults": run.faults,
        "wall_s": round(wall_s, 1),
        "requests": len(run.samples),
        "outcomes": dict(total),
        "unintended": total.get("unintended", 0),
        "intended_429": total.get("intended_429", 0),
        "routes": routes,
        "non_2xx": [
            {"route": r, "status": st, "outcome": o, "detail": d, "count": n}
            for (r, st, o, d), n in sorted(statuses.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1]))
        ],
        "unintended_examples": [
            {"route": s.route, "status": s.status, "detail": s.detail, "request_id": s.request_id}
            for s in run.samples
            if s.outcome == "unintended"
        ][:10],
        "documents": audit_result.to_dict(),
        "injected_faults": injected,
        "stack_metrics": run.metrics,
    }


def print_report(summary: dict[str, Any]) -> None:
    mode = "with faults injected" if summary["faults"] else "no faults"
    print(
        f"\nLoad: {summary['clients']} clients (+1 over-limit) for {summary['duration_s']} s, {mode}; "
        f"{summary['requests']} requests in {summary['wall_s']} s (Python {sys.version.split()[0]})\n"
    )
    print("| route | requests | ok | intended 429 | injected 5xx | unintended | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for route, r in summary["routes"].items():
        print(
            f"| {route} | {r['requests']} | {r['ok']} | {r['intended_429']} | {r['injected']} | "
            f"{r['unintended']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |"
        )
    if summary["non_2xx"]:
        print("\n| route | status | outcome | problem type / detail | count |")
        print("|---|---:|---|---|---:|")
        for row in summary["non_2xx"]:
            detail = row["detail"].replace("https://edgerag.dev/problems/", "").replace("|", "/")
            print(f"| {row['route']} | {row['status']} | {row['outcome']} | {detail} | {row['count']} |")
    d = summary["documents"]
    print(
        f"\nUploads accepted: {d['accepted']}; ready {d['ready']}, failed {d['failed']} "
        f"({d['failed_reasons'] or 'none'}); lost {d['lost']}; duplicated chunks {d['duplicated_chunks']}; "
        f"index inconsistent {d['inconsistent_index']}. All documents of the run's tenants: "
        f"{d['tenant_documents']}; unaccepted but stuck: {d['unaccepted_stuck']}; chat answers left "
        f"pending: {d['pending_chat_messages']}."
    )
    if summary["stack_metrics"]:
        print(f"The stack's GET /metrics after the run: {json.dumps(summary['stack_metrics'])}")
    if summary["injected_faults"]:
        print(f"Faults injected: {json.dumps(summary['injected_faults'])}")
    for example in d["examples"]:
        print(f"  ! {example}")
    for example in summary["unintended_examples"]:
        print(f"  ! unintended: {json.dumps(example)} (its lines in the stack log carry the request id)")


def verdict(summary: dict[str, Any]) -> list[str]:
    d = summary["documents"]
    problems = []
    if summary["unintended"]:
        problems.append(f"{summary['unintended']} unintended errors")
    if d["lost"] or d["unaccepted_stuck"]:
        problems.append(f"{d['lost']} lost, {d['unaccepted_stuck']} unaccepted documents stuck")
    if d["duplicated_chunks"] or d["inconsistent_index"]:
        problems.append(f"{d['duplicated_chunks']} duplicated chunks, {d['inconsistent_index']} inconsistent")
    if not summary["faults"] and d["failed"]:
        problems.append(f"{d['failed']} documents failed without faults")
    if summary["faults"] and d["failed_without_reason"]:
        problems.append(f"{d['failed_without_reason']} documents failed without a reason")
    return problems


# ------------------------------------------------------------------------------------ main


async def warm_up(run: Run, client: TenantClient) -> None:
    """Load the models and fill the caches before measuring (the first embedding loads the model):
    one upload until it is ready, a search and both kinds of chat, recorded nowhere."""
    scratch = Run(run.args, run.faults)
    rng = random.Random(0)
    await upload(scratch, client, rng)
    await settle(scratch, run.args.settle)
    for action in (search, chat_json, chat_sse):
        await action(scratch, client, rng)


async def load(run: Run, base: str, admin_token: str) -> None:
    clients = await make_tenants(run, base, admin_token)
    run.tenants = [c.tenant_id for c in clients]
    phase(f"{len(clients)} tenants created")
    try:
        if run.args.warm_up:
            await warm_up(run, clients[0])
            clients[0].session, clients[0].documents = None, {}
            phase("warmed up")
        deadline = time.monotonic() + run.args.duration
        await asyncio.gather(
            *[drive(run, c, deadline, run.args.seed * 1000 + i) for i, c in enumerate(clients)]
        )
        phase("load done")
        await settle(run, run.args.settle)
        phase("uploads settled")
        run.metrics = await scrape_metrics(base)
    finally:
        for client in clients:
            await client.http.aclose()


_STARTED = time.perf_counter()


def phase(what: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {what}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent tenants (one client each)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--faults", action="store_true", help="inject faults (DEFAULT_FAULTS)")
    parser.add_argument(
        "--fault-rates", type=json.loads, default=None, help="JSON rates overriding the defaults"
    )
    parser.add_argument("--client-rps", type=float, default=4.0, help="the most requests/s one client sends")
    parser.add_argument(
        "--over-limit-quota", type=int, default=2, help="the over-limit tenant's hourly limit"
    )
    parser.add_argument(
        "--provider-timeout", type=float, default=10.0, help="with --faults: dedalus's per-attempt timeout"
    )
    parser.add_argument("--request-timeout", type=float, default=60.0, help="a response slower is a hang")
    parser.add_argument("--settle", type=float, default=90.0, help="how long to wait for uploads to finish")
    parser.add_argument(
        "--warm-up",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load the models before measuring (--no-warm-up: counts only, as in CI)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--keep-state", action="store_true", help="keep the state directory (printed)")
    args = parser.parse_args()
    faults = {**DEFAULT_FAULTS, **(args.fault_rates or {})} if args.faults else None
    run = Run(args, faults=faults is not None)
    state_root = Path(tempfile.mkdtemp(prefix="edgerag-load-"))
    began = time.perf_counter()
    stack = start_stack(state_root, faults, args.seed, args.provider_timeout)
    phase("stack up")
    try:
        asyncio.run(load(run, stack.ready["base_url"], stack.ready["admin_token"]))
    finally:
        injected = stack.stop()
    wall = time.perf_counter() - began
    phase("stack stopped")
    result = audit(state_root / "state", run.accepted, run.tenants)
    phase("audited")
    summary = summarize(run, result, injected, wall)
    print_report(summary)
    problems = verdict(summary)
    print("\nverdict: " + ("; ".join(problems) if problems else "0 unintended errors, 0 lost, 0 duplicated"))
    if args.json is not None:
        args.json.write_text(json.dumps({**summary, "verdict": problems}, indent=2))
    if args.keep_state:
        print(f"state and stack log: {state_root}")
    else:
        shutil.rmtree(state_root, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
