"""The model configuration: providers, a model catalog with prices, and per-plan routing.

One schema, two readers. Operators write it in a tenant file (``tenants/<name>.toml``: top-level
``[providers.<name>]`` and the ``[models]`` table, validated by ``edgerag_ops.tenants``); the renderer
writes it into dedalus's ``MODELS_CONFIG`` var as canonical JSON (:func:`ModelsConfig.to_json`); dedalus
parses it once per isolate (``dedalus.settings``) and routes with it (``dedalus.routing``). Both sides
validate with the models below, so a file that deploys is a config dedalus accepts. The JSON mirrors the
tenant file (``{"providers": {...}, "models": {...}}``), so an error path such as
``models.plans.pro.chat`` means the same field in both.

Shape (TOML)::

    [providers.workers-ai]
    kind = "workers-ai"                       # env.AI.run: no base_url, no key

    [providers.openai]
    kind = "openai"                           # any OpenAI-compatible /v1/chat/completions
    base_url = "https://api.openai.com/v1"
    api_key_secret = "OPENAI_API_KEY"         # the NAME of the worker secret, never the key

    [models]                                  # the default routing (plans not listed below use it)
    chat = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    fallback_chat = ["@cf/meta/llama-3.1-8b-instruct"]
    summarize = "@cf/meta/llama-3.1-8b-instruct"   # optional, defaults to chat
    classify = "@cf/meta/llama-3.1-8b-instruct"    # optional, defaults to chat
    allow_override = []                            # models a request may ask for instead

    [models.catalog."@cf/meta/llama-3.1-8b-instruct"]
    provider = "workers-ai"
    input_usd_per_mtok = 0.282
    output_usd_per_mtok = 0.827
    context_window = 7968

    [models.plans.enterprise]                 # any field left out is the default routing's
    chat = "gpt-4o-mini"
    allow_override = ["@cf/meta/llama-3.3-70b-instruct-fp8-fast"]

Every model a route or an allow-list names must be in the catalog, and every catalog entry's provider in
``providers``: a reference to nothing is a load-time error, never a runtime substitution.

To add a provider kind: add it to :data:`ProviderKind`, say whether it speaks HTTP (:data:`HTTP_KINDS`),
and write its adapter in ``dedalus.providers``.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "HTTP_KINDS",
    "CatalogModel",
    "ModelsConfig",
    "PlanRouting",
    "ProviderConfig",
    "ProviderKind",
    "Routing",
    "reference_problems",
]

ProviderKind = Literal["workers-ai", "openai", "anthropic"]
HTTP_KINDS: frozenset[str] = frozenset({"openai", "anthropic"})

# A worker secret's name: upper-case like every var in this project. A pasted key ("sk-...", mixed
# case) never matches, and the error for it never repeats the value (see edgerag_ops.tenants).
_SECRET_NAME = r"^[A-Z][A-Z0-9_]{0,63}$"
_PROVIDER_NAME = r"^[a-z][a-z0-9-]{0,31}$"
_PLAN_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
# Headers that carry credentials must come from api_key_secret, never from the (committed) config.
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})

ModelId = Annotated[str, Field(min_length=1, max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Model):
    """Where a provider is and how to authenticate (by secret NAME)."""

    kind: ProviderKind
    base_url: Annotated[str, Field(max_length=512)] | None = None
    api_key_secret: Annotated[str, Field(pattern=_SECRET_NAME)] | None = None
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")], str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://api.openai.com/v1")
        if "@" in value.split("/", 3)[2]:
            raise ValueError("must not carry credentials (use api_key_secret)")
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in _CREDENTIAL_HEADERS:
                raise ValueError(f"header {name!r} carries credentials: name a secret in api_key_secret")
        return value

    @model_validator(mode="after")
    def _shape(self) -> ProviderConfig:
        if self.kind in HTTP_KINDS and self.base_url is None:
            raise ValueError(f"@base_url: a {self.kind} provider needs its base_url")
        if self.kind not in HTTP_KINDS and (self.base_url or self.api_key_secret or self.headers):
            raise ValueError(f"@kind: a {self.kind} provider takes no base_url, api_key_secret or headers")
        return self


Price = Annotated[float, Field(ge=0, le=10_000)]


class CatalogModel(_Model):
    """One model edgerag may route to, under its configured id (the catalog key)."""

    provider: Annotated[str, Field(pattern=_PROVIDER_NAME)]
    model: ModelId | None = Field(default=None, description="the provider's model name; default: the id")
    input_usd_per_mtok: Price
    output_usd_per_mtok: Price
    cached_input_usd_per_mtok: Price | None = Field(
        default=None, description="price of prompt tokens served from the provider's cache; default: input"
    )
    context_window: Annotated[int, Field(ge=256, le=10_000_000)]
    supports_tools: bool = False


class PlanRouting(_Model):
    """A plan's routing; a field left out (None) is the default routing's."""

    chat: ModelId | None = None
    fallback_chat: list[ModelId] | None = None
    summarize: ModelId | None = None
    classify: ModelId | None = None
    allow_override: list[ModelId] | None = None


class Routing(_Model):
    """The ``[models]`` table: the default routing, the catalog and the per-plan routing."""

    chat: ModelId
    fallback_chat: list[ModelId] = Field(default_factory=list)
    summarize: ModelId | None = None
    classify: ModelId | None = None
    allow_override: list[ModelId] = Field(default_factory=list)
    catalog: dict[ModelId, CatalogModel] = Field(default_factory=dict)
    plans: dict[Annotated[str, Field(pattern=_PLAN_NAME)], PlanRouting] = Field(default_factory=dict)


def _references(routing: PlanRouting | Routing, where: str) -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    for field in ("chat", "summarize", "classify"):
        value = getattr(routing, field)
        if value is not None:
            refs.append((f"{where}.{field}", value))
    for field in ("fallback_chat", "allow_override"):
        for i, value in enumerate(getattr(routing, field) or []):
            refs.append((f"{where}.{field}[{i}]", value))
    return refs


def reference_problems(providers: dict[str, ProviderConfig], models: Routing) -> list[tuple[str, str]]:
    """Every (field path, problem) where the config names a provider or model it does not define."""
    problems: list[tuple[str, str]] = []
    for model_id, entry in models.catalog.items():
        if entry.provider not in providers:
            known = ", ".join(sorted(providers)) or "none"
            problems.append(
                (f"models.catalog.{model_id}.provider", f"{entry.provider!r} is not in providers ({known})")
            )
    refs = _references(models, "models")
    for plan, routing in models.plans.items():
        refs += _references(routing, f"models.plans.{plan}")
    for path, value in refs:
        if value not in models.catalog:
            problems.append((path, f"{value!r} is not in models.catalog"))
    return problems


class ModelsConfig(_Model):
    """What dedalus's ``MODELS_CONFIG`` var holds."""

    providers: dict[Annotated[str, Field(pattern=_PROVIDER_NAME)], ProviderConfig] = Field(
        default_factory=dict
    )
    models: Routing

    @model_validator(mode="after")
    def _check_references(self) -> ModelsConfig:
        problems = reference_problems(self.providers, self.models)
        if problems:
            raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))
        return self

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces, no null fields): the same config renders to the same
        text, so drift detection compares it byte for byte."""
        return json.dumps(
            self.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
        )
