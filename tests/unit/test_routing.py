"""Routing: plan -> primary + fallbacks per purpose, overrides limited to an allow-list, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dedalus.routing import ModelCatalog, ModelNotAllowedError, UnknownModelError
from dedalus.settings import parse_models_config
from edgerag.llm.config import ModelsConfig
from edgerag_ops.tenants import load_tenant

REPO = Path(__file__).resolve().parents[2]


def _entry(provider: str = "wai", **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "input_usd_per_mtok": 1.0,
        "output_usd_per_mtok": 2.0,
        "context_window": 8000,
    } | extra


CONFIG: dict[str, Any] = {
    "providers": {
        "wai": {"kind": "workers-ai"},
        "oai": {
            "kind": "openai",
            "base_url": "https://api.openai.com/v1/",
            "api_key_secret": "OPENAI_API_KEY",
        },
    },
    "models": {
        "chat": "big",
        "fallback_chat": ["small", "big", "tiny"],
        "classify": "tiny",
        "allow_override": ["small"],
        "catalog": {
            "big": _entry(model="@cf/meta/llama-3.3-70b-instruct-fp8-fast", supports_tools=True),
            "small": _entry(),
            "tiny": _entry(),
            "gpt": _entry("oai", model="gpt-4o-mini", cached_input_usd_per_mtok=0.5, context_window=128000),
        },
        "plans": {
            "pro": {"chat": "gpt", "allow_override": ["big", "small"]},
            "free": {"chat": "tiny", "fallback_chat": [], "allow_override": []},
        },
    },
}


@pytest.fixture
def catalog() -> ModelCatalog:
    return ModelCatalog(ModelsConfig.model_validate(CONFIG))


def ids(routes: list[Any]) -> list[str]:
    return [r.model_id for r in routes]


def test_primary_first_then_fallbacks_without_duplicates(catalog: ModelCatalog) -> None:
    assert ids(catalog.resolve("enterprise", "chat")) == ["big", "small", "tiny"]


def test_a_plan_overrides_only_the_fields_it_names(catalog: ModelCatalog) -> None:
    assert ids(catalog.resolve("pro")) == ["gpt", "small", "big", "tiny"]  # the default fallbacks
    assert ids(catalog.resolve("free")) == ["tiny"]  # no fallbacks at all


def test_per_purpose_models(catalog: ModelCatalog) -> None:
    assert ids(catalog.resolve("enterprise", "classify"))[0] == "tiny"
    # summarize is not configured anywhere: it follows the plan's chat model.
    assert ids(catalog.resolve("enterprise", "summarize"))[0] == "big"
    assert ids(catalog.resolve("pro", "summarize"))[0] == "gpt"
    assert ids(catalog.resolve("pro", "classify"))[0] == "tiny"  # set at the top level, kept


def test_an_unknown_plan_gets_the_default_routing(catalog: ModelCatalog) -> None:
    assert catalog.resolve("no-such-plan") == catalog.resolve("enterprise")
    assert catalog.plan("no-such-plan").chat == "big"


def test_override_in_the_allow_list_replaces_the_primary(catalog: ModelCatalog) -> None:
    assert ids(catalog.resolve("pro", "chat", "big")) == ["big", "small", "tiny"]
    assert ids(catalog.resolve("enterprise", "chat", "small")) == ["small", "big", "tiny"]
    # Asking for the model the plan would use anyway is always allowed.
    assert ids(catalog.resolve("free", "chat", "tiny")) == ["tiny"]


def test_override_outside_the_allow_list_is_refused_not_substituted(catalog: ModelCatalog) -> None:
    with pytest.raises(ModelNotAllowedError) as info:
        catalog.resolve("free", "chat", "big")
    event = info.value.to_event()
    assert (event.code, event.status) == ("invalid_request", 400)
    assert "'big'" in event.message and "'free'" in event.message and "allowed: tiny" in event.message


def test_unknown_model_is_a_422_naming_what_is_served(catalog: ModelCatalog) -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve("pro", "chat", "gpt-5")
    event = info.value.to_event()
    assert (event.code, event.status) == ("unknown_model", 422)
    assert "gpt-5" in event.message and "big, gpt, small, tiny" in event.message
    # An unknown id is reported as unknown even where the allow-list would refuse it anyway.
    with pytest.raises(UnknownModelError):
        catalog.resolve("free", "chat", "gpt-5")


def test_a_route_carries_what_adapters_breakers_and_billing_need(catalog: ModelCatalog) -> None:
    gpt = catalog.resolve("pro")[0]
    assert (gpt.model_id, gpt.provider, gpt.provider_kind) == ("gpt", "oai", "openai")
    assert (gpt.base_url, gpt.api_key_secret, gpt.provider_model) == (
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        "gpt-4o-mini",
    )
    assert (gpt.input_usd_per_mtok, gpt.output_usd_per_mtok, gpt.cached_input_usd_per_mtok) == (1.0, 2.0, 0.5)
    assert (gpt.context_window, gpt.supports_tools) == (128000, False)
    big = catalog.route("big")
    assert big.provider_model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast" and big.supports_tools
    assert catalog.route("small").provider_model == "small"  # the id when no provider name is given
    assert catalog.route("small").cached_input_usd_per_mtok == 1.0  # defaults to the input price


def test_allowed_models(catalog: ModelCatalog) -> None:
    assert catalog.allowed_models("pro") == ["big", "gpt", "small"]
    assert catalog.allowed_models("free") == ["tiny"]


def test_the_shipped_tenants_resolve_every_plan_and_purpose() -> None:
    for name in ("local", "acme", "globex"):
        tenant = load_tenant(REPO / "tenants" / f"{name}.toml")
        catalog = ModelCatalog(parse_models_config(tenant.models_config().to_json()))
        for plan in ("free", "standard", "enterprise", "unlisted"):
            for purpose in ("chat", "summarize", "classify"):
                routes = catalog.resolve(plan, purpose)  # type: ignore[arg-type]
                assert routes and len(ids(routes)) == len(set(ids(routes)))
    local = ModelCatalog(load_tenant(REPO / "tenants" / "local.toml").models_config())
    assert ids(local.resolve("free")) == ["@cf/meta/llama-3.1-8b-instruct"]
    assert ids(local.resolve("standard")) == [
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "@cf/meta/llama-3.1-8b-instruct",
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda c: c["models"]["plans"]["pro"].update(chat="nope"),
            "models.plans.pro.chat: 'nope' is not in",
        ),
        (lambda c: c["models"]["fallback_chat"].append("nope"), "models.fallback_chat[3]: 'nope'"),
        (lambda c: c["models"]["catalog"]["gpt"].update(provider="ghost"), "'ghost' is not in providers"),
        (lambda c: c["providers"]["oai"].pop("base_url"), "providers.oai.base_url: a openai provider needs"),
        (lambda c: c["models"]["catalog"]["big"].update(context_window="huge"), "context_window"),
        (lambda c: c.pop("models"), "models: Field required"),
    ],
)
def test_invalid_config_names_the_field(change: Any, words: str) -> None:
    import copy
    import json

    broken = copy.deepcopy(CONFIG)
    change(broken)
    with pytest.raises(ValueError) as info:
        parse_models_config(json.dumps(broken))
    assert words in str(info.value)


def test_not_json_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Invalid JSON"):
        parse_models_config("{models: ")
