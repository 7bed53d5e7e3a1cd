"""The local Cloudflare API emulator through its HTTP interface (no wrangler needed).

What real wrangler needs from it is proven in test_wrangler_commands.py and test_deploy_drift.py;
these pin the envelope, auth, pagination, D1 SQL semantics, limits and persistence directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag_local.cfapi import CloudflareApiEmulator

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "emulator-test-token"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[CloudflareApiEmulator]:
    with CloudflareApiEmulator(tmp_path / "state") as emulator:
        emulator.add_token(TOKEN, ACCOUNT)
        yield emulator


@pytest.fixture
def http(api: CloudflareApiEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, headers={"authorization": f"Bearer {TOKEN}"}) as client:
        yield client


A = f"/accounts/{ACCOUNT}"


def ok(response: httpx.Response) -> Any:
    body = response.json()
    assert response.status_code == 200 and body["success"] is True, body
    assert body["errors"] == [] and "messages" in body
    return body["result"]


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    assert body["success"] is False and body["result"] is None
    return response.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def test_auth(api: CloudflareApiEmulator, http: httpx.Client) -> None:
    assert error(httpx.get(api.base_url + f"{A}/queues"))[:2] == (400, 6003)
    bad = {"authorization": "Bearer nope"}
    assert error(httpx.get(api.base_url + f"{A}/queues", headers=bad))[:2] == (403, 10000)
    assert error(httpx.get(api.base_url + "/user/tokens/verify", headers=bad)) == (
        401,
        1000,
        "Invalid API Token",
    )
    assert ok(http.get("/user/tokens/verify"))["status"] == "active"
    other = "fedcba9876543210fedcba9876543210"
    assert error(http.get(f"/accounts/{other}/queues"))[:2] == (403, 10000)


def test_unknown_route_is_an_enveloped_404_and_recorded(
    api: CloudflareApiEmulator, http: httpx.Client
) -> None:
    status, code, message = error(http.get(f"{A}/workers/nothing-here"))
    assert (status, code) == (404, 7003) and "Could not route" in message
    assert api.router.unknown == [f"GET {A}/workers/nothing-here"]


def test_pagination(http: httpx.Client) -> None:
    for title in ("a", "b", "c"):
        ok(http.post(f"{A}/storage/kv/namespaces", json={"title": title}))
    pages = [
        http.get(f"{A}/storage/kv/namespaces", params={"page": p, "per_page": 2}).json() for p in (1, 2, 3)
    ]
    assert [[ns["title"] for ns in page["result"]] for page in pages] == [["a", "b"], ["c"], []]
    assert pages[0]["result_info"]["total_count"] == 3 and pages[0]["result_info"]["total_pages"] == 2
    assert error(http.post(f"{A}/storage/kv/namespaces", json={"title": "a"}))[:2] == (400, 10014)


def test_d1_query_runs_sql_atomically(http: httpx.Client) -> None:
    db = ok(http.post(f"{A}/d1/database", json={"name": "db"}))["uuid"]
    query = f"{A}/d1/database/{db}/query"
    results = ok(http.post(query, json={"sql": "CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('a;b');"}))
    assert [r["success"] for r in results] == [True, True] and results[1]["meta"]["changes"] == 1
    # A failing statement rolls back the whole request, as a failed remote migration must.
    status, code, message = error(
        http.post(query, json={"sql": "INSERT INTO t VALUES ('c'); SELECT * FROM nope;"})
    )
    assert (status, code) == (400, 7500) and message == "no such table: nope: SQLITE_ERROR"
    rows = ok(http.post(query, json={"sql": "SELECT x FROM t WHERE x = ?", "params": ["a;b"]}))[0]["results"]
    assert rows == [{"x": "a;b"}]
    assert ok(http.post(query, json={"sql": "SELECT count(*) AS n FROM t"}))[0]["results"] == [{"n": 1}]
    raw = ok(http.post(f"{A}/d1/database/{db}/raw", json={"sql": "SELECT x FROM t"}))[0]["results"]
    assert raw == {"columns": ["x"], "rows": [["a;b"]]}
    assert error(http.post(query, json={"sql": "BEGIN TRANSACTION"}))[:2] == (400, 7500)
    listed = ok(http.get(f"{A}/d1/database"))
    assert [(d["name"], d["num_tables"]) for d in listed] == [("db", 1)]


def test_vectorize_limits(http: httpx.Client) -> None:
    base = f"{A}/vectorize/v2/indexes"
    assert (
        error(http.post(base, json={"name": "i", "config": {"dimensions": 8, "metric": "cosin"}}))[0] == 400
    )
    assert (
        error(http.post(base, json={"name": "i", "config": {"dimensions": 2000, "metric": "cosine"}}))[0]
        == 400
    )
    index = ok(http.post(base, json={"name": "i", "config": {"dimensions": 8, "metric": "cosine"}}))
    assert index["config"] == {"dimensions": 8, "metric": "cosine"}
    assert (
        error(http.post(base, json={"name": "i", "config": {"dimensions": 8, "metric": "cosine"}}))[0] == 409
    )
    for n in range(10):
        ok(
            http.post(
                f"{base}/i/metadata_index/create", json={"propertyName": f"p{n}", "indexType": "string"}
            )
        )
    assert (
        error(
            http.post(f"{base}/i/metadata_index/create", json={"propertyName": "p10", "indexType": "number"})
        )[0]
        == 400
    )
    assert len(ok(http.get(f"{base}/i/metadata_index/list"))["metadataIndexes"]) == 10
    assert error(http.get(f"{base}/missing"))[0] == 404


def test_queue_consumers_get_platform_defaults(http: httpx.Client) -> None:
    q = ok(http.post(f"{A}/queues", json={"queue_name": "q"}))["queue_id"]
    body = {"type": "worker", "script_name": "w", "dead_letter_queue": "dlq", "settings": {"max_retries": 5}}
    assert error(http.post(f"{A}/queues/{q}/consumers", json=body))[0] == 400  # the DLQ does not exist
    ok(http.post(f"{A}/queues", json={"queue_name": "dlq"}))
    consumer = ok(http.post(f"{A}/queues/{q}/consumers", json=body))
    assert consumer["settings"] == {"batch_size": 10, "max_retries": 5, "max_wait_time_ms": 5000}
    listed = ok(http.get(f"{A}/queues", params={"name": "q"}))
    assert [c["script"] for c in listed[0]["consumers"]] == ["w"]


def _upload(http: httpx.Client, name: str, bindings: list[dict[str, Any]]) -> httpx.Response:
    metadata = {
        "main_module": "entry.py",
        "bindings": bindings,
        "compatibility_date": "2026-05-26",
        "compatibility_flags": ["python_workers"],
        "observability": {"enabled": True},
    }
    files = {
        "metadata": (None, __import__("json").dumps(metadata), "application/json"),
        "entry.py": ("entry.py", b"print(1)", "text/x-python"),
    }
    return http.put(f"{A}/workers/scripts/{name}", files=files)


def test_script_upload_checks_bindings_and_settings_fill_in_fields(http: httpx.Client) -> None:
    status, code, message = error(
        _upload(http, "w", [{"type": "r2_bucket", "name": "B", "bucket_name": "nope"}])
    )
    assert (status, code) == (400, 10021) and "nope" in message
    ok(_upload(http, "target", []))
    ok(
        _upload(
            http,
            "w",
            [
                {"type": "service", "name": "S", "service": "target"},
                {"type": "plain_text", "name": "A", "text": "1"},
            ],
        )
    )
    settings = ok(http.get(f"{A}/workers/scripts/w/settings"))
    assert [b["name"] for b in settings["bindings"]] == ["A", "S"]
    assert settings["bindings"][1]["environment"] == "production"
    assert settings["observability"] == {"enabled": True, "head_sampling_rate": 1}
    assert settings["usage_model"] == "standard" and settings["placement"] == {}
    assert error(http.get(f"{A}/workers/scripts/missing/settings"))[:2] == (404, 10007)
    assert error(http.get(f"{A}/workers/services/missing"))[:2] == (404, 10090)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with CloudflareApiEmulator(tmp_path / "s") as first:
        first.add_token(TOKEN, ACCOUNT)
        with httpx.Client(base_url=first.base_url, headers={"authorization": f"Bearer {TOKEN}"}) as c:
            db = ok(c.post(f"{A}/d1/database", json={"name": "db"}))["uuid"]
            ok(
                c.post(
                    f"{A}/d1/database/{db}/query",
                    json={"sql": "CREATE TABLE t (x); INSERT INTO t VALUES (1)"},
                )
            )
    with CloudflareApiEmulator(tmp_path / "s") as second:
        with httpx.Client(base_url=second.base_url, headers={"authorization": f"Bearer {TOKEN}"}) as c:
            rows = ok(c.post(f"{A}/d1/database/{db}/query", json={"sql": "SELECT x FROM t"}))[0]["results"]
    assert rows == [{"x": 1}]


def test_only_binds_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        CloudflareApiEmulator(None, host="0.0.0.0")
