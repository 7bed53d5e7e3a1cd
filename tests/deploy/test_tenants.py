"""Tenant files: the shipped examples load, and every error names the file, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgerag_ops.tenants import TenantConfigError, load_all, load_each, load_tenant

REPO = Path(__file__).resolve().parents[2]
TENANTS = REPO / "tenants"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _local_text() -> str:
    return (TENANTS / "local.toml").read_text(encoding="utf-8")


def test_shipped_tenants_load() -> None:
    names = [t.name for t in load_all(TENANTS)]
    assert {"local", "acme", "globex"} <= set(names)
    assert names == sorted(names)


def test_local_tenant_matches_the_local_stack() -> None:
    local = load_tenant(TENANTS / "local.toml")
    assert local.api_token_env == "CLOUDFLARE_API_TOKEN"
    assert local.vectorize.index_name == "edgerag-chunks"
    assert local.vectorize.dimensions == 768
    assert local.vectorize.metric == "cosine"
    assert local.vectorize.metadata_indexes == {"tenant_id": "string", "document_id": "string"}
    assert local.models.embedding == "@cf/baai/bge-base-en-v1.5"
    assert local.d1 is local.resources.d1 and local.queues is local.resources.queues


def test_names_per_environment() -> None:
    acme = load_tenant(TENANTS / "acme.toml")
    assert acme.worker_name("gateway", "prod") == "acme-edgerag-gateway"
    assert acme.worker_name("gateway", "staging") == "acme-edgerag-gateway-staging"
    assert acme.resource_names("prod").d1 == "acme-edgerag"
    assert acme.resource_names("dev").vectorize == "acme-chunks-dev"


def test_unknown_environment_names_the_field() -> None:
    local = load_tenant(TENANTS / "local.toml")
    with pytest.raises(TenantConfigError) as info:
        local.resource_names("prod")
    assert info.value.field == "environments.prod"
    assert "local.toml" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ('metric = "cosine"', 'metric = "cosin"', "resources.vectorize.metric", "'cosin'"),
        ("period = 60", "period = 30", "rate_limits.period", "10 or 60"),
        (
            'account_id = "0123456789abcdef0123456789abcdef"',
            'account_id = "acct"',
            "account_id",
            "hexadecimal",
        ),
        ("dimensions = 768", "dimensions = 384", "resources.vectorize.dimensions", "768-dimensional"),
        (
            'dead_letter = "edgerag-ingest-dlq"',
            'dead_letter = "edgerag-ingest"',
            "resources.queues.dead_letter",
            "differ",
        ),
        (
            'bucket_name = "edgerag-files"',
            'bucket_name = "Edgerag_Files"',
            "resources.r2.bucket_name",
            "lowercase",
        ),
        ("max_batch_size = 10", "max_batch_size = 500", "resources.queues.consumer.max_batch_size", "100"),
        ("[rate_limits]", "[rate_limits]\nburst = 3", "rate_limits.burst", "unknown field"),
        ('plan = "free"', 'plan = "gold"', "plan", "'free'"),
        (
            "workers_dev = true",
            'workers_dev = true\nroute = "a.example.com/*"\ncustom_domain = "b.example.com"',
            "environments.dev.custom_domain",
            "not both",
        ),
    ],
)
def test_errors_name_file_field_and_problem(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    text = _local_text()
    assert old in text
    path = _write(tmp_path, "local", text.replace(old, new, 1))
    with pytest.raises(TenantConfigError) as info:
        load_tenant(path)
    assert info.value.field == field
    assert str(info.value).startswith(f"{path}: {field}: ")
    assert words in str(info.value)


def test_too_many_metadata_indexes(tmp_path: Path) -> None:
    extra = "\n".join(f'p{i} = "string"' for i in range(9))
    text = _local_text().replace('document_id = "string"', 'document_id = "string"\n' + extra)
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "local", text))
    assert info.value.field == "resources.vectorize.metadata_indexes"


def test_missing_field(tmp_path: Path) -> None:
    text = _local_text().replace('plan = "free"\n', "")
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "local", text))
    assert str(info.value).endswith("plan: required field is missing")


def test_token_in_place_of_variable_name_is_rejected_and_not_echoed(tmp_path: Path) -> None:
    token = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0h"
    text = _local_text().replace('api_token_env = "CLOUDFLARE_API_TOKEN"', f'api_token_env = "{token}"')
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "local", text))
    assert info.value.field == "api_token_env"
    assert "token" in str(info.value)
    assert token not in str(info.value) and token not in repr(info.value)


def test_upper_case_token_shape_is_rejected(tmp_path: Path) -> None:
    token = "AB3DEF6HIJ9KLM2NOP5QRS8TUV1WXY4ZAB7DEF0H"
    text = _local_text().replace('api_token_env = "CLOUDFLARE_API_TOKEN"', f'api_token_env = "{token}"')
    with pytest.raises(TenantConfigError, match="looks like a token") as info:
        load_tenant(_write(tmp_path, "local", text))
    assert token not in str(info.value)


def test_name_must_match_file(tmp_path: Path) -> None:
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "other", _local_text()))
    assert info.value.field == "name"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "local", "name = \n")
    with pytest.raises(TenantConfigError) as info:
        load_tenant(path)
    assert str(path) in str(info.value) and info.value.field == "<toml>"


def test_load_each_keeps_going_and_load_all_fails_fast(tmp_path: Path) -> None:
    _write(tmp_path, "local", _local_text())
    _write(tmp_path, "broken", _local_text().replace('name = "local"', 'name = "broken"').replace("768", "7"))
    results = load_each(tmp_path)
    assert [type(r).__name__ for r in results] == ["TenantConfigError", "Tenant"]
    with pytest.raises(TenantConfigError, match=r"broken\.toml"):
        load_all(tmp_path)


# ----------------------------------------------------------------------------- model routing


def test_shipped_tenants_route_every_plan_to_catalog_models() -> None:
    for tenant in load_all(TENANTS):
        config = tenant.models_config()
        assert set(config.models.catalog) >= {tenant.models.chat, *tenant.models.fallback_chat}
        for entry in config.models.catalog.values():
            assert entry.provider in config.providers
    acme = load_tenant(TENANTS / "acme.toml")
    assert acme.providers["anthropic"].api_key_secret == "ANTHROPIC_API_KEY"
    assert acme.models.plans["enterprise"].chat == "claude-sonnet-4-5"


def test_models_config_json_is_canonical_and_round_trips() -> None:
    from edgerag.llm.config import ModelsConfig

    local = load_tenant(TENANTS / "local.toml")
    text = local.models_config().to_json()
    assert ModelsConfig.model_validate_json(text) == local.models_config()
    assert ModelsConfig.model_validate_json(text).to_json() == text
    assert "embedding" not in text and " " not in text


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        (
            'fallback_chat = ["@cf/meta/llama-3.1-8b-instruct"]',
            'fallback_chat = ["@cf/meta/llama-9-instruct"]',
            "models.fallback_chat[0]",
            "'@cf/meta/llama-9-instruct' is not in models.catalog",
        ),
        (
            '[models.plans.free]\nchat = "@cf/meta/llama-3.1-8b-instruct"',
            '[models.plans.free]\nchat = "gpt-5"',
            "models.plans.free.chat",
            "'gpt-5' is not in models.catalog",
        ),
        (
            'provider = "workers-ai"',
            'provider = "openai"',
            "models.catalog.@cf/meta/llama-3.3-70b-instruct-fp8-fast.provider",
            "not in providers (workers-ai)",
        ),
        (
            'kind = "workers-ai"\n',
            'kind = "openai"\n',
            "providers.workers-ai.base_url",
            "needs its base_url",
        ),
        (
            'kind = "workers-ai"\n',
            'kind = "bedrock"\n',
            "providers.workers-ai.kind",
            "'workers-ai', 'openai' or 'anthropic'",
        ),
        ("input_usd_per_mtok = 0.293", "input_usd_per_mtok = -1", "models.catalog.", "greater than or equal"),
        ("context_window = 7968", "context_window = 0", "models.catalog.", "greater than or equal to 256"),
        ("supports_tools = true", "supports_tool = true", "models.catalog.", "unknown field"),
    ],
)
def test_model_config_errors_name_file_field_and_problem(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    text = _local_text()
    assert old in text
    path = _write(tmp_path, "local", text.replace(old, new, 1))
    with pytest.raises(TenantConfigError) as info:
        load_tenant(path)
    assert info.value.field.startswith(field)
    assert str(info.value).startswith(f"{path}: {field}")
    assert words in str(info.value)


def _with_provider(extra: str) -> str:
    return _local_text().replace("[providers.workers-ai]\n", extra + "\n[providers.workers-ai]\n", 1)


def test_a_pasted_api_key_is_rejected_and_never_echoed(tmp_path: Path) -> None:
    key = "sk-proj-Zx81kQw2mNvB7cD4eF6gH9jK0lL3pP5r"
    text = _with_provider(
        '[providers.openai]\nkind = "openai"\nbase_url = "https://api.openai.com/v1"\n'
        f'api_key_secret = "{key}"\n'
    )
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "local", text))
    assert info.value.field == "providers.openai.api_key_secret"
    assert "NAME of a worker secret" in str(info.value)
    assert key not in str(info.value) and key not in repr(info.value)


def test_credentials_in_headers_or_urls_are_rejected_and_never_echoed(tmp_path: Path) -> None:
    key = "sk-ant-api03-secretsecretsecret"
    text = _with_provider(
        '[providers.anthropic]\nkind = "anthropic"\nbase_url = "https://api.anthropic.com"\n'
        f'headers = {{ "x-api-key" = "{key}" }}\n'
    )
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "local", text))
    assert info.value.field == "providers.anthropic.headers"
    assert "api_key_secret" in str(info.value) and key not in str(info.value)
    text = _with_provider(
        f'[providers.proxy]\nkind = "openai"\nbase_url = "https://u:{key}@llm.example/v1"\n'
    )
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_write(tmp_path, "local", text))
    assert info.value.field == "providers.proxy.base_url"
    assert "must not carry credentials" in str(info.value) and key not in str(info.value)


def test_an_openai_compatible_provider_without_a_key_is_accepted(tmp_path: Path) -> None:
    # A local Ollama needs no key: the provider table without api_key_secret is valid.
    text = _with_provider('[providers.ollama]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434/v1/"\n')
    tenant = load_tenant(_write(tmp_path, "local", text))
    assert tenant.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert tenant.providers["ollama"].api_key_secret is None
