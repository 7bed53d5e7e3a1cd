"""The deployable workers run on real Pyodide: imported through their entry modules with the real Workers
SDK, with exactly the wheels each deploy carries, and driven through the entry path against workerd's
own local D1/KV/R2/Queues (Miniflare) passed through Pyodide's JS FFI.

The test stages each worker as a deploy does (``stage_worker`` + ``vendor_core``), writes the run's
config (wheel lists from ``scripts/setup``'s cache, bindings read from each worker's wrangler.toml, the
D1 migrations split into statements), runs ``tests/pyodide/run.mjs`` under Node once for all three
workers, and asserts on the JSON it prints. Whatever the deployable code does that Pyodide cannot
(threads, sockets, a C extension without a wasm wheel, an undeclared dependency, import-time I/O)
fails an import or a request here. See docs/pyodide.md.

Needs ``scripts/setup`` (node_modules with pyodide and miniflare, .cache/pyodide-wheels); no network.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from edgerag_local.runtime.bundle import stage_worker, vendor_core

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "pyodide" / "run.mjs"
WHEELS = REPO / ".cache" / "pyodide-wheels"
PYODIDE = REPO / "node_modules" / "pyodide"
CORE = REPO / "packages" / "edgerag" / "src" / "edgerag"
WORKERS = ("gateway", "dedalus", "ingest")
# Generous: a hung interpreter must fail the test, not stall CI. Not a performance threshold.
TIMEOUT_S = 600

DOCUMENT = {
    "name": "turbopump-notes.txt",
    "text": (
        "Turbopump maintenance notes.\n\n"
        "The liquid oxygen turbopump of the combustion chamber feed system spins at 30000 rpm. "
        "Its inducer blades are inspected for cavitation pitting after every static fire. "
        "Bearings are replaced every ten flights; the seal package is replaced every five.\n"
    ),
    "query": "turbopump inducer cavitation",
}

pytestmark = pytest.mark.slow


def _worker_bindings(worker: str) -> dict[str, Any]:
    config = tomllib.loads((REPO / "workers" / worker / "wrangler.toml").read_text(encoding="utf-8"))
    services = {s["binding"]: s["service"].removeprefix("edgerag-") for s in config.get("services", [])}
    return {
        "vars": {k: str(v) for k, v in config.get("vars", {}).items()},
        "secrets": {},
        "d1": {d["binding"]: d["database_name"] for d in config.get("d1_databases", [])},
        "kv": {k["binding"]: k["id"] for k in config.get("kv_namespaces", [])},
        "r2": {r["binding"]: r["bucket_name"] for r in config.get("r2_buckets", [])},
        "queues": {q["binding"]: q["queue"] for q in config.get("queues", {}).get("producers", [])},
        "vectorize": {v["binding"]: v["index_name"] for v in config.get("vectorize", [])},
        "ai": config.get("ai", {}).get("binding"),
        "ratelimits": {r["name"]: r["simple"] for r in config.get("ratelimits", [])},
        "services": services,
        "consumes": [c["queue"] for c in config.get("queues", {}).get("consumers", [])],
    }


def _statements(sql: str) -> list[str]:
    """Split a migration into statements with SQLite's own notion of a complete one (triggers included)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    assert not current.strip(), f"incomplete statement at the end of a migration: {current[:200]!r}"
    return statements


def _migrations() -> list[dict[str, Any]]:
    return [
        {"name": path.name, "statements": _statements(path.read_text(encoding="utf-8"))}
        for path in sorted((REPO / "migrations").glob("*.sql"))
    ]


def _run_config(stage: Path) -> dict[str, Any]:
    manifest_path = WHEELS / "manifest.json"
    if not manifest_path.is_file():
        pytest.fail(f"{manifest_path} is missing: run scripts/setup (it fetches the Pyodide wheels)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    bindings = {w: _worker_bindings(w) for w in WORKERS}
    bindings["gateway"]["secrets"]["ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    workers = {}
    for worker in WORKERS:
        staged = stage_worker(REPO / "workers" / worker, stage / worker)
        vendor_core(staged, CORE)
        workers[worker] = {
            "stage": str(staged),
            "wheels": [f"{worker}/{wheel}" for wheel in manifest["workers"][worker]["wheels"]],
        }
    consumed = sorted({q for b in bindings.values() for q in b.pop("consumes")} - {"edgerag-ingest-dlq"})
    return {
        "pyodideDir": f"{PYODIDE}/",
        "wheelDir": str(WHEELS),
        "workers": workers,
        "bindings": bindings,
        "consumedQueues": consumed,
        "migrationsBinding": "gateway__DB",
        "migrations": [
            {"name": "0000_d1_migrations", "statements": [_D1_MIGRATIONS_TABLE]},
            *_migrations(),
        ],
        "vectorizeIndexes": {"edgerag-chunks": {"dimensions": 768, "metric": "cosine"}},
        "document": DOCUMENT,
        "chatCall": {
            "context": {"tenant_id": "tnt_pyodide", "plan": "free", "request_id": "req_pyodide"},
            "messages": [{"role": "user", "content": "What spins at 30000 rpm?"}],
        },
    }


# wrangler's bookkeeping table (docs: D1 migrations), created before the project's own migrations.
_D1_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, "
    "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    for needed in (PYODIDE / "pyodide.mjs", REPO / "node_modules" / "miniflare"):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run scripts/setup (it installs the pinned npm packages)")
    scratch = tmp_path_factory.mktemp("pyodide-run")
    config_path = scratch / "config.json"
    config_path.write_text(json.dumps(_run_config(scratch / "stage")), encoding="utf-8")
    # Nothing that could point anything at an account reaches the run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")} | {"NO_COLOR": "1"}
    started = time.perf_counter()
    result = subprocess.run(
        ["node", str(HARNESS), str(config_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    elapsed = time.perf_counter() - started
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"the Pyodide run failed:\n{result.stderr[-20000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    python = report["python"]["gateway"].split()[0]
    # Say which Python this was, and how long the whole run took (measured, not asserted).
    print(
        f"\nPyodide run: Python {python} (Pyodide {report['pyodide']}) in {elapsed:.1f} s; phases (ms): "
        f"{report['timings']}",
        file=sys.stderr,
    )
    report["stderr"] = result.stderr
    return report


def _problem(step: dict[str, Any], status: int) -> dict[str, Any]:
    assert step["status"] == status, step
    assert step["contentType"].startswith("application/problem+json"), step
    assert step["json"]["status"] == status
    return step["json"]


def test_every_worker_runs_on_the_python_the_project_declares(run: dict[str, Any]) -> None:
    for worker in WORKERS:
        version = run["python"][worker].split()[0]
        declared = tomllib.loads((REPO / "workers" / worker / "pyproject.toml").read_text("utf-8"))
        assert version.rsplit(".", 1)[0] == declared["tool"]["edgerag"]["python"]["pyodide-run"], version


def test_health_crosses_the_service_binding(run: dict[str, Any]) -> None:
    health = run["steps"]["gateway_health"]
    assert health["status"] == 200, health
    assert health["json"]["service"] == "gateway"
    assert health["json"]["status"] == "ok"
    # The dedalus part came over RPC from the other interpreter: its own health reply, validated.
    assert health["json"]["dedalus"] == run["steps"]["dedalus_health"]["json"]
    assert run["steps"]["dedalus_health"]["status"] == 200
    assert run["steps"]["ingest_health"]["status"] == 200, run["steps"]["ingest_health"]


def test_dedalus_models_rpc_answers_the_plan_catalog(run: dict[str, Any]) -> None:
    models = run["steps"]["dedalus_models_rpc"]
    assert "@cf/meta/llama-3.1-8b-instruct" in json.dumps(models), models


def test_upload_is_stored_queued_and_ingested_by_the_consumer(run: dict[str, Any]) -> None:
    steps = run["steps"]
    assert steps["create_tenant"]["status"] == 201, steps["create_tenant"]
    assert steps["create_key"]["status"] == 201, steps["create_key"]
    upload = steps["upload"]
    assert upload["status"] == 202, upload
    document_id = upload["json"]["document"]["id"]
    # The message went through Miniflare's queue and reached the consumer as a MessageBatch.
    assert len(steps["queue_deliveries"]) == 1, steps["queue_deliveries"]
    assert document_id in json.dumps(steps["queue_deliveries"][0]["body"])
    assert steps["ingest_batch"] == [{"id": steps["queue_deliveries"][0]["id"], "outcome": {"kind": "ack"}}]
    assert steps["vectors_indexed"] >= 1
    document = steps["document"]
    assert document["status"] == 200, document
    assert document["json"]["status"] == "ready", document


def test_search_finds_the_ingested_document_in_every_mode(run: dict[str, Any]) -> None:
    document_id = run["steps"]["upload"]["json"]["document"]["id"]
    for step in ("search", "search_keyword", "search_vector"):
        search = run["steps"][step]
        assert search["status"] == 200, search
        hits = search["json"]["results"]
        assert hits and hits[0]["document_id"] == document_id, (step, hits)
    assert "cavitation" in run["steps"]["search_keyword"]["json"]["results"][0]["snippet"].lower()


def test_bad_requests_get_problems_not_500s(run: dict[str, Any]) -> None:
    _problem(run["steps"]["search_invalid"], 422)
    _problem(run["steps"]["search_unauthenticated"], 401)


def test_dedalus_chat_calls_workers_ai_through_the_binding(run: dict[str, Any]) -> None:
    chat = run["steps"]["dedalus_chat"]
    assert chat["status"] == 200, chat
    events = chat["json"]["events"]
    assert events[-1]["type"] == "done", events
    text = "".join(e.get("text", "") for e in events if e["type"] == "token")
    assert "What spins at 30000 rpm?" in text, events
    assert "@cf/meta/llama-3.1-8b-instruct" in run["ai_calls"]


def test_answer_and_streamed_chat_go_gateway_to_dedalus_to_ai(run: dict[str, Any]) -> None:
    answer = run["steps"]["answer"]
    assert answer["status"] == 200, answer
    stream = run["steps"]["chat_completions_stream"]
    assert stream["status"] == 200, stream
    assert stream["contentType"].startswith("text/event-stream"), stream
    assert "Stand-in reply to: Say hello." in "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in stream["text"].splitlines()
        if line.startswith("data: {")
    ), stream["text"]
    assert stream["text"].rstrip().endswith("data: [DONE]"), stream["text"]


def test_crons_run_and_nothing_reached_the_network(run: dict[str, Any]) -> None:
    assert run["steps"]["gateway_cron"] == "ran"
    assert run["steps"]["ingest_cron"] == "ran"
    assert run["outbound"] == {w: [] for w in WORKERS}, run["outbound"]


def test_no_worker_logged_a_traceback_or_left_a_promise_rejected(run: dict[str, Any]) -> None:
    # An exception a handler swallowed and logged, or a rejection nobody awaited, is a bug at the edge
    # even when the response looked right (the stderr of the run shows where).
    assert run["tracebacks"] == {w: 0 for w in WORKERS}, run["stderr"][-20000:]
    assert run["unhandled_rejections"] == [], run["unhandled_rejections"]
