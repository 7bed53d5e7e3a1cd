"""Rendering: byte-identical golden files, determinism, and invariants on the live repository configs.

The golden tests render from a frozen copy of the repository's wrangler configs
(``golden/templates/``) so that others editing ``workers/*/wrangler.toml`` do not break them; the live
configs are covered by the invariant tests below. After an intended change to the renderer or the
tenant files, regenerate with ``EDGERAG_UPDATE_GOLDEN=1 pytest tests/deploy/test_render_golden.py`` and
review the diff.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from edgerag_ops.render import DEPLOY_ORDER, RenderError, ResourceIds, Templates, render_all
from edgerag_ops.tenants import Tenant, load_all

from .conftest import REPO

GOLDEN = Path(__file__).parent / "golden"
IDS = ResourceIds(d1_database_id="11111111-2222-4333-8444-555555555555", kv_namespace_id="a" * 32)
TENANTS = load_all(REPO / "tenants")
CASES = [(t, env) for t in TENANTS for env in sorted(t.environments)]


def _id(case: tuple[Tenant, str]) -> str:
    return f"{case[0].name}-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_golden(case: tuple[Tenant, str]) -> None:
    tenant, env = case
    rendered = render_all(Templates.load(GOLDEN / "templates"), tenant, env, IDS)
    for worker, item in rendered.items():
        path = GOLDEN / f"{tenant.name}-{env}" / f"{worker}.toml"
        if os.environ.get("EDGERAG_UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(item.text, encoding="utf-8")
        assert path.read_text(encoding="utf-8") == item.text, f"{path} differs; see this module's docstring"


def test_rendering_is_deterministic() -> None:
    templates = Templates.load(GOLDEN / "templates")
    for tenant, env in CASES:
        first = {w: r.text for w, r in render_all(templates, tenant, env, IDS).items()}
        again = {
            w: r.text for w, r in render_all(Templates.load(GOLDEN / "templates"), tenant, env, IDS).items()
        }
        assert first == again


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_live_repository_configs_render_for_every_tenant(case: tuple[Tenant, str]) -> None:
    tenant, env = case
    names = tenant.resource_names(env)
    manifest = tomllib.loads((REPO / "wrangler.toml").read_text())
    canonical = {
        manifest["d1_databases"][0]["database_name"],
        manifest["r2_buckets"][0]["bucket_name"],
        manifest["vectorize"][0]["index_name"],
        *(q["queue"] for q in manifest["queues"]["producers"]),
    }
    rendered = render_all(Templates.load(REPO), tenant, env, IDS)
    assert list(rendered) == list(DEPLOY_ORDER)
    for worker, item in rendered.items():
        config = tomllib.loads(item.text)
        assert config["name"] == tenant.worker_name(worker, env)
        assert config["account_id"] == tenant.account_id
        assert config["vars"]["EDGERAG_TENANT"] == tenant.name
        for db in config.get("d1_databases", []):
            assert (db["database_name"], db["database_id"]) == (names.d1, IDS.d1_database_id)
        for kv in config.get("kv_namespaces", []):
            assert kv["id"] == IDS.kv_namespace_id
        for service in config.get("services", []):
            assert service["service"].startswith(f"{tenant.name}-edgerag-")
        queues = config.get("queues", {})
        used = {q["queue"] for q in queues.get("producers", []) + queues.get("consumers", [])}
        assert used <= {names.ingest_queue, names.dead_letter_queue}
        # No canonical (repository placeholder) resource name survives unless the tenant chose the same one.
        text_values = {str(v) for v in config["vars"].values()}
        mine = {names.d1, names.r2, names.vectorize, names.ingest_queue, names.dead_letter_queue}
        assert not (canonical - mine) & text_values
        # Only the gateway is reachable from outside.
        if worker != "gateway":
            assert config["workers_dev"] is False and "routes" not in config


def test_tenant_settings_reach_the_right_places() -> None:
    acme = next(t for t in TENANTS if t.name == "acme")
    rendered = render_all(Templates.load(GOLDEN / "templates"), acme, "prod", IDS)
    gateway = tomllib.loads(rendered["gateway"].text)
    ingest = tomllib.loads(rendered["ingest"].text)
    assert gateway["routes"] == [{"pattern": "rag.acme.example", "custom_domain": True}]
    assert gateway["ratelimits"][0]["simple"] == {"limit": 600, "period": 60}
    assert gateway["vars"]["EMBEDDING_MODEL"] == "@cf/baai/bge-large-en-v1.5"
    main, dead = ingest["queues"]["consumers"]
    assert (main["queue"], main["max_batch_size"], main["max_retries"], main["retry_delay"]) == (
        "acme-edgerag-ingest",
        25,
        5,
        30,
    )
    assert main["dead_letter_queue"] == "acme-edgerag-ingest-dlq"
    assert (dead["queue"], dead["max_batch_size"]) == ("acme-edgerag-ingest-dlq", 10)  # the repo's settings


def test_unknown_template_key_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "workers").mkdir()
    (tmp_path / "wrangler.toml").write_text((GOLDEN / "templates" / "wrangler.toml").read_text())
    for worker in DEPLOY_ORDER:
        (tmp_path / "workers" / worker).mkdir()
        text = (GOLDEN / "templates" / "workers" / worker / "wrangler.toml").read_text()
        if worker == "gateway":
            text += '\n[[hyperdrive]]\nbinding = "HD"\nid = "x"\n'
        (tmp_path / "workers" / worker / "wrangler.toml").write_text(text)
    with pytest.raises(RenderError, match=r"gateway/wrangler\.toml.*hyperdrive"):
        render_all(Templates.load(tmp_path), TENANTS[0], sorted(TENANTS[0].environments)[0], IDS)


def test_dedalus_default_models_config_is_what_the_local_tenant_renders() -> None:
    # workers/dedalus/wrangler.toml carries the local stack's MODELS_CONFIG (the local runtime reads
    # that file); tenants/local.toml is where operators edit it. They must say the same thing.
    from edgerag.llm.config import ModelsConfig

    local = next(t for t in TENANTS if t.name == "local")
    rendered = render_all(Templates.load(REPO), local, "dev", IDS)["dedalus"]
    template = tomllib.loads((REPO / "workers" / "dedalus" / "wrangler.toml").read_text())
    default = ModelsConfig.model_validate_json(template["vars"]["MODELS_CONFIG"])
    assert tomllib.loads(rendered.text)["vars"]["MODELS_CONFIG"] == default.to_json()


def test_models_config_follows_the_tenant_file() -> None:
    from edgerag.llm.config import ModelsConfig

    for tenant in TENANTS:
        for env in sorted(tenant.environments):
            dedalus = tomllib.loads(render_all(Templates.load(REPO), tenant, env, IDS)["dedalus"].text)
            config = ModelsConfig.model_validate_json(dedalus["vars"]["MODELS_CONFIG"])
            assert config == tenant.models_config()
            assert dedalus["vars"]["EMBEDDING_MODEL"] == tenant.models.embedding
            assert "DEFAULT_CHAT_MODEL" not in dedalus["vars"]
