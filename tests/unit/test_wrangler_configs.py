"""The worker wrangler configs agree with the stack manifest (the top-level wrangler.toml).

Every resource a worker binds (D1 database, KV namespace, R2 bucket, Vectorize index, queue) must be
declared in the manifest with the same identity, so per-tenant rendering and drift detection have one
list of resources to work from. All workers are Python Workers on one compatibility date.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKERS = ("gateway", "dedalus", "ingest")


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return _load(REPO / "wrangler.toml")


@pytest.fixture(scope="module")
def configs() -> dict[str, dict[str, Any]]:
    return {name: _load(REPO / "workers" / name / "wrangler.toml") for name in WORKERS}


def _resources(config: dict[str, Any]) -> set[tuple[str, ...]]:
    """Every resource a config refers to, as (kind, identity...) tuples; binding names are left out."""
    found: set[tuple[str, ...]] = set()
    for db in config.get("d1_databases", []):
        found.add(("d1", db["database_name"], db["database_id"]))
    for kv in config.get("kv_namespaces", []):
        found.add(("kv", kv["id"]))
    for bucket in config.get("r2_buckets", []):
        found.add(("r2", bucket["bucket_name"]))
    for index in config.get("vectorize", []):
        found.add(("vectorize", index["index_name"]))
    for dataset in config.get("analytics_engine_datasets", []):
        found.add(("analytics_engine", dataset["dataset"]))
    queues = config.get("queues", {})
    for producer in queues.get("producers", []):
        found.add(("queue", producer["queue"]))
    for consumer in queues.get("consumers", []):
        found.add(("queue", consumer["queue"]))
        if "dead_letter_queue" in consumer:
            found.add(("queue", consumer["dead_letter_queue"]))
    return found


def undeclared_resources(config: dict[str, Any], manifest: dict[str, Any]) -> list[tuple[str, ...]]:
    return sorted(_resources(config) - _resources(manifest))


def test_manifest_is_never_deployed_and_names_the_stack(manifest: dict[str, Any]) -> None:
    assert manifest["name"] == "edgerag"
    assert "main" not in manifest


def test_manifest_runs_migrations_from_the_repo_root(manifest: dict[str, Any]) -> None:
    (db,) = manifest["d1_databases"]
    assert db["database_name"] == "edgerag"
    assert (REPO / db["migrations_dir"]).resolve() == (REPO / "migrations").resolve()


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_resources_are_declared_in_the_manifest(
    worker: str, configs: dict[str, dict[str, Any]], manifest: dict[str, Any]
) -> None:
    assert undeclared_resources(configs[worker], manifest) == []


def test_a_resource_missing_from_the_manifest_is_reported(
    configs: dict[str, dict[str, Any]], manifest: dict[str, Any]
) -> None:
    renamed = copy.deepcopy(configs["gateway"])
    renamed["r2_buckets"][0]["bucket_name"] = "somebody-elses-files"
    renamed["d1_databases"][0]["database_id"] = "11111111-1111-4111-8111-111111111111"
    assert undeclared_resources(renamed, manifest) == [
        ("d1", "edgerag", "11111111-1111-4111-8111-111111111111"),
        ("r2", "somebody-elses-files"),
    ]


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_is_a_python_worker_with_an_entry(worker: str, configs: dict[str, dict[str, Any]]) -> None:
    config = configs[worker]
    assert config["name"] == f"edgerag-{worker}"
    assert "python_workers" in config["compatibility_flags"]
    assert config["main"] == "src/entry.py"
    assert (REPO / "workers" / worker / config["main"]).is_file()
    assert config["observability"]["enabled"] is True


def test_all_configs_share_one_compatibility_date(
    configs: dict[str, dict[str, Any]], manifest: dict[str, Any]
) -> None:
    dates = {name: config["compatibility_date"] for name, config in configs.items()}
    assert set(dates.values()) == {manifest["compatibility_date"]}, dates


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_migrations_dir_is_the_manifests(
    worker: str, configs: dict[str, dict[str, Any]], manifest: dict[str, Any]
) -> None:
    expected = (REPO / manifest["d1_databases"][0]["migrations_dir"]).resolve()
    for db in configs[worker].get("d1_databases", []):
        assert (REPO / "workers" / worker / db["migrations_dir"]).resolve() == expected


@pytest.mark.parametrize("worker", WORKERS)
def test_binding_names_are_unique_within_a_worker(worker: str, configs: dict[str, dict[str, Any]]) -> None:
    config = configs[worker]
    names = [config["ai"]["binding"]] if "ai" in config else []
    keys = ("d1_databases", "kv_namespaces", "r2_buckets", "vectorize", "services")
    keys += ("analytics_engine_datasets",)
    for key in keys:
        names += [entry["binding"] for entry in config.get(key, [])]
    names += [entry["binding"] for entry in config.get("queues", {}).get("producers", [])]
    names += [entry["name"] for entry in config.get("ratelimits", [])]
    names += list(config.get("vars", {}))
    assert len(names) == len(set(names)), names


def test_service_bindings_and_queues_connect_the_workers(configs: dict[str, dict[str, Any]]) -> None:
    names = {config["name"] for config in configs.values()}
    for config in configs.values():
        for service in config.get("services", []):
            assert service["service"] in names
    queues = [config.get("queues", {}) for config in configs.values()]
    produced = {p["queue"] for q in queues for p in q.get("producers", [])}
    consumers = [c for q in queues for c in q.get("consumers", [])]
    consumed = {c["queue"] for c in consumers}
    # The platform itself feeds a dead-letter queue, so it needs no producer binding.
    dead_letters = {c["dead_letter_queue"] for c in consumers if "dead_letter_queue" in c}
    assert produced <= consumed, "a queue that nothing consumes"
    assert consumed <= produced | dead_letters, "a consumer of a queue that nothing feeds"


@pytest.mark.parametrize("worker", WORKERS)
def test_rate_limit_period_var_equals_the_bindings_period(
    worker: str, configs: dict[str, dict[str, Any]]
) -> None:
    # The binding only answers {success}; the gateway's Retry-After is computed from this var.
    config = configs[worker]
    periods = {str(r["simple"]["period"]) for r in config.get("ratelimits", [])}
    if not periods:
        assert "RATE_LIMIT_PERIOD" not in config.get("vars", {})
        return
    assert len(periods) == 1, "one period per worker: Retry-After has one var to go by"
    assert config["vars"].get("RATE_LIMIT_PERIOD") == periods.pop()


def _bindings_by_name(config: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """binding name -> the resource it points at."""
    found: dict[str, tuple[str, ...]] = {}
    for db in config.get("d1_databases", []):
        found[db["binding"]] = ("d1", db["database_name"], db["database_id"], db.get("migrations_dir", ""))
    for kv in config.get("kv_namespaces", []):
        found[kv["binding"]] = ("kv", kv["id"])
    for bucket in config.get("r2_buckets", []):
        found[bucket["binding"]] = ("r2", bucket["bucket_name"])
    for index in config.get("vectorize", []):
        found[index["binding"]] = ("vectorize", index["index_name"])
    for producer in config.get("queues", {}).get("producers", []):
        found[producer["binding"]] = ("queue", producer["queue"])
    if "ai" in config:
        found[config["ai"]["binding"]] = ("ai",)
    return found


def test_dedalus_binds_the_tool_resources_exactly_as_the_gateway(configs: dict[str, dict[str, Any]]) -> None:
    # The tools (search, ingest_document, user context) read and write the gateway's data: the same
    # binding names must reach the same resources, or a tool would see another database.
    dedalus = _bindings_by_name(configs["dedalus"])
    gateway = _bindings_by_name(configs["gateway"])
    assert set(dedalus) == {"DB", "VECTORS", "FILES", "INGEST_QUEUE", "AI", "CACHE"}
    assert {name: gateway[name] for name in dedalus} == dedalus


def test_dedalus_embeds_queries_with_the_model_that_indexed_them(configs: dict[str, dict[str, Any]]) -> None:
    embedding = {configs[w]["vars"]["EMBEDDING_MODEL"] for w in WORKERS}
    assert len(embedding) == 1, embedding


def test_dedalus_default_models_config_is_valid_and_local(configs: dict[str, dict[str, Any]]) -> None:
    from edgerag.llm.config import ModelsConfig

    config = ModelsConfig.model_validate_json(configs["dedalus"]["vars"]["MODELS_CONFIG"])
    # The local stack needs no account and no network: Workers AI (the local AI emulator) only.
    assert {p.kind for p in config.providers.values()} == {"workers-ai"}
    assert all(model_id.startswith("@cf/") for model_id in config.models.catalog)
    assert set(config.models.catalog) == {
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "@cf/meta/llama-3.1-8b-instruct",
    }


def test_dedalus_resilience_vars_parse(configs: dict[str, dict[str, Any]]) -> None:
    from types import SimpleNamespace

    from dedalus.settings import load

    settings = load(SimpleNamespace(**configs["dedalus"]["vars"]))
    assert (settings.provider_timeout_s, settings.provider_max_retries) == (30.0, 3)
    assert (settings.breaker_threshold, settings.breaker_cooldown_s) == (5, 30.0)
