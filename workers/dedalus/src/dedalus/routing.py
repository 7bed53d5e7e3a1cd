"""Which models answer a call: the tenant's plan, the call's purpose and an optional override.

:class:`ModelCatalog` is built once per isolate from the parsed ``MODELS_CONFIG``
(:class:`edgerag.llm.config.ModelsConfig`, see ``dedalus.settings``). :meth:`ModelCatalog.resolve`
answers the ordered list of :class:`ModelRoute` to try: the primary first, then the plan's
``fallback_chat`` chain, without duplicates. The resilience layer (``dedalus.resilience``) walks that
list; usage rows and events name ``ModelRoute.model_id`` (the configured id) and ``provider``.

Rules (the config itself is validated at load, so every name it holds exists):

- the plan's routing is ``models.plans[plan]`` with every field it leaves out taken from the top-level
  ``[models]`` routing; a plan the config does not list gets the top-level routing (the *default plan*);
- the primary is the plan's model for the purpose (``summarize`` / ``classify`` default to ``chat``);
- an override must be a catalog id (:class:`UnknownModelError` otherwise, ErrorEvent
  ``unknown_model`` / 422: the request is well-formed but names nothing this deployment serves) and
  either in the plan's ``allow_override`` or the plan's own primary for that purpose
  (:class:`ModelNotAllowedError` otherwise, ``invalid_request`` / 400). It then replaces the primary;
  the plan's fallbacks still follow it, and every event names the model that actually answered.
  Nothing is ever substituted silently: an override that is refused is an error, not the default model.

To add a purpose: add it to ``edgerag.contracts.dedalus.Purpose`` and a field to
``edgerag.llm.config.PlanRouting``/``Routing``; :meth:`ModelCatalog.resolve` reads it by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgerag.contracts.dedalus import Purpose
from edgerag.llm.config import ModelsConfig, PlanRouting, ProviderKind
from edgerag.llm.events import ErrorCode, ErrorEvent

__all__ = [
    "ModelCatalog",
    "ModelNotAllowedError",
    "ModelRoute",
    "PlanModels",
    "RoutingError",
    "UnknownModelError",
]


@dataclass(frozen=True)
class ModelRoute:
    """One model to try, with everything an adapter, the breakers and the usage recorder need."""

    model_id: str  # the configured id (catalog key): what events and usage rows name
    provider: str  # the configured provider name: what circuit breakers are keyed by
    provider_kind: ProviderKind
    base_url: str | None
    api_key_secret: str | None  # the NAME of the secret; the key is read from env at call time
    headers: tuple[tuple[str, str], ...]
    provider_model: str  # the provider's own model name, sent on the wire
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float
    context_window: int
    supports_tools: bool


@dataclass(frozen=True)
class PlanModels:
    """A plan's routing with the defaults filled in."""

    chat: str
    fallback_chat: tuple[str, ...]
    summarize: str
    classify: str
    allow_override: frozenset[str]

    def primary(self, purpose: Purpose) -> str:
        return {"chat": self.chat, "summarize": self.summarize, "classify": self.classify}[purpose]


class RoutingError(Exception):
    """A call asked for a model it cannot have; :meth:`to_event` is the error the caller gets."""

    code: ErrorCode = "invalid_request"
    status: int = 400

    def __init__(self, message: str, model: str) -> None:
        super().__init__(message)
        self.message = message
        self.model = model

    def to_event(self) -> ErrorEvent:
        return ErrorEvent(code=self.code, message=self.message, status=self.status)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


class UnknownModelError(RoutingError):
    """The id is not in the catalog (a typo, or a model this deployment does not serve)."""

    code: ErrorCode = "unknown_model"
    status = 422


class ModelNotAllowedError(RoutingError):
    """The id is in the catalog but the plan may not override to it."""

    code: ErrorCode = "invalid_request"
    status = 400


class ModelCatalog:
    def __init__(self, config: ModelsConfig) -> None:
        self._config = config
        self._routes = {model_id: self._route(model_id) for model_id in config.models.catalog}
        self._default = self._fill(PlanRouting())
        self._plans = {name: self._fill(plan) for name, plan in config.models.plans.items()}

    @property
    def model_ids(self) -> list[str]:
        """Every configured id, sorted."""
        return sorted(self._routes)

    def route(self, model_id: str) -> ModelRoute:
        """The route of one configured id (:class:`UnknownModelError` if the catalog lacks it)."""
        route = self._routes.get(model_id)
        if route is None:
            raise UnknownModelError(
                f"unknown model {model_id!r}; this deployment serves: {', '.join(self.model_ids)}", model_id
            )
        return route

    def plan(self, plan: str) -> PlanModels:
        """The plan's routing; a plan the config does not list gets the default routing."""
        return self._plans.get(plan, self._default)

    def allowed_models(self, plan: str, purpose: Purpose = "chat") -> list[str]:
        """The ids a call of this plan may name as its model (the primary and the allow-list)."""
        models = self.plan(plan)
        return sorted(models.allow_override | {models.primary(purpose)})

    def resolve(self, plan: str, purpose: Purpose = "chat", override: str | None = None) -> list[ModelRoute]:
        """The routes to try, primary first, then the plan's fallbacks, each model once."""
        models = self.plan(plan)
        primary = models.primary(purpose)
        if override is not None and override != primary:
            self.route(override)  # unknown ids fail first: "no such model" beats "not allowed"
            if override not in models.allow_override:
                allowed = ", ".join(self.allowed_models(plan, purpose))
                raise ModelNotAllowedError(
                    f"model {override!r} is not available on the {plan!r} plan; allowed: {allowed}", override
                )
            primary = override
        chain = [primary, *models.fallback_chat]
        return [self._routes[model_id] for model_id in dict.fromkeys(chain)]

    def _fill(self, plan: PlanRouting) -> PlanModels:
        top = self._config.models
        chat = plan.chat or top.chat
        fallbacks = plan.fallback_chat if plan.fallback_chat is not None else top.fallback_chat
        allow = plan.allow_override if plan.allow_override is not None else top.allow_override
        return PlanModels(
            chat=chat,
            fallback_chat=tuple(fallbacks),
            # A plan that changes its chat model but not summarize/classify keeps the top-level ones
            # when those are set explicitly, else follows its own chat model.
            summarize=plan.summarize or top.summarize or chat,
            classify=plan.classify or top.classify or chat,
            allow_override=frozenset(allow),
        )

    def _route(self, model_id: str) -> ModelRoute:
        entry = self._config.models.catalog[model_id]
        provider = self._config.providers[entry.provider]
        return ModelRoute(
            model_id=model_id,
            provider=entry.provider,
            provider_kind=provider.kind,
            base_url=provider.base_url,
            api_key_secret=provider.api_key_secret,
            headers=tuple(sorted(provider.headers.items())),
            provider_model=entry.model or model_id,
            input_usd_per_mtok=entry.input_usd_per_mtok,
            output_usd_per_mtok=entry.output_usd_per_mtok,
            cached_input_usd_per_mtok=(
                entry.cached_input_usd_per_mtok
                if entry.cached_input_usd_per_mtok is not None
                else entry.input_usd_per_mtok
            ),
            context_window=entry.context_window,
            supports_tools=entry.supports_tools,
        )
