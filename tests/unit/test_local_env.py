"""The env a worker gets locally holds exactly what its wrangler config declares."""

from pathlib import Path

import pytest
from edgerag_local.runtime.config import load_worker_config
from edgerag_local.runtime.env import ResourcePool, build_env
from edgerag_local.runtime.stack import read_dev_vars
from edgerag_local.runtime.state import StateDir
from edgerag_local.vectorize import VectorizeIndexConfig

ROOT = Path(__file__).resolve().parents[2]
INDEXES = {"edgerag-chunks": VectorizeIndexConfig("edgerag-chunks", 768, "cosine", {"tenant_id": "string"})}


def no_services(name: str):  # type: ignore[no-untyped-def]
    raise AssertionError(f"service {name} resolved eagerly")


@pytest.fixture
def pool(tmp_path: Path) -> ResourcePool:
    return ResourcePool(StateDir(tmp_path), INDEXES)


def test_dedalus_env_has_only_its_bindings_and_vars(pool: ResourcePool) -> None:
    env = build_env(load_worker_config(ROOT / "workers/dedalus/wrangler.toml"), pool, no_services)
    assert sorted(dir(env)) == [
        "AI",
        "BREAKER_COOLDOWN_S",
        "BREAKER_THRESHOLD",
        "CACHE",
        "DB",
        "EMBEDDING_MODEL",
        "FILES",
        "INGEST_QUEUE",
        "METRICS",
        "MODELS_CONFIG",
        "PROVIDER_MAX_RETRIES",
        "PROVIDER_TIMEOUT_S",
        "VECTORS",
    ]
    with pytest.raises(AttributeError, match=r"env\.RATE_LIMITER is not bound for worker .edgerag-dedalus."):
        env.RATE_LIMITER  # noqa: B018
    with pytest.raises(AttributeError, match="read-only"):
        env.AI = None


def test_workers_bound_to_one_resource_share_it(pool: ResourcePool) -> None:
    gateway = build_env(load_worker_config(ROOT / "workers/gateway/wrangler.toml"), pool, no_services)
    ingest = build_env(load_worker_config(ROOT / "workers/ingest/wrangler.toml"), pool, no_services)
    assert gateway.DB is ingest.DB
    assert gateway.FILES is ingest.FILES
    assert gateway.VECTORS is ingest.VECTORS
    # Both produce to the ingest queue (ingest's URL re-sync cron too); only what a config binds exists.
    assert "INGEST_QUEUE" in gateway and "INGEST_QUEUE" in ingest
    assert "DEDALUS" not in ingest


def test_var_overrides_apply_like_dev_vars(pool: ResourcePool, tmp_path: Path) -> None:
    dev_vars = tmp_path / ".dev.vars"
    dev_vars.write_text('# secrets\nADMIN_TOKEN="s3cret"\nMAX_UPLOAD_BYTES=5\n\n')
    overrides = read_dev_vars(dev_vars)
    assert overrides == {"ADMIN_TOKEN": "s3cret", "MAX_UPLOAD_BYTES": "5"}
    env = build_env(load_worker_config(ROOT / "workers/gateway/wrangler.toml"), pool, no_services,
                    var_overrides=overrides)
    assert env.MAX_UPLOAD_BYTES == "5" and env.ADMIN_TOKEN == "s3cret"


def test_malformed_dev_vars_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / ".dev.vars"
    path.write_text("GOOD=1\nnot a pair\n")
    with pytest.raises(ValueError, match=r"\.dev\.vars:2: expected KEY=value"):
        read_dev_vars(path)


def test_vectorize_index_needs_a_declared_shape(tmp_path: Path) -> None:
    pool = ResourcePool(StateDir(tmp_path), {})
    with pytest.raises(KeyError, match="declare it in the tenant file"):
        build_env(load_worker_config(ROOT / "workers/gateway/wrangler.toml"), pool, no_services)
