"""dedalus's settings, parsed once per isolate from its env vars (``edgerag.settings``).

``MODELS_CONFIG`` is the JSON the renderer writes from the tenant file's ``[providers]`` and
``[models]`` (schema: :mod:`edgerag.llm.config`); the other vars tune ``dedalus.resilience``. Anything
invalid fails at load with the var's name and, for ``MODELS_CONFIG``, the path of each bad field
(``models.plans.pro.chat: 'x' is not in models.catalog``) — never at the first request that needs it.

Provider API keys are not settings: ``ModelsConfig`` names each key's secret and the orchestrator reads
``env.<NAME>`` at call time, so a missing secret fails only the provider that needs it (a
CONFIGURATION failure that falls back), never the whole worker.

To add a setting: a :func:`~edgerag.settings.var` field below, its default in
``workers/dedalus/wrangler.toml`` if the local stack needs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgerag.llm.config import ModelsConfig
from edgerag.settings import SettingsError, load_settings, positive_int, var
from pydantic import ValidationError

from dedalus.resilience import RetryPolicy

__all__ = ["DedalusSettings", "load", "parse_models_config"]


def parse_models_config(text: str) -> ModelsConfig:
    """``MODELS_CONFIG`` as a :class:`ModelsConfig`; ``ValueError`` naming every bad field."""
    try:
        return ModelsConfig.model_validate_json(text)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            path = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            # Cross-field checks name the field they blame as "@field: message".
            if message.startswith("@") and ": " in message:
                target, message = message[1:].split(": ", 1)
                path = f"{path}.{target}" if path else target
            # The cross-reference check already names each field in its message.
            problems.append(f"{path}: {message}" if path else message)
        raise ValueError("; ".join(problems)) from None


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 600:
        raise ValueError("must be a number of seconds in (0, 600]")
    return value


def _retries(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise ValueError("must be an integer from 0 to 10")
    return value


@dataclass(frozen=True)
class DedalusSettings:
    # var() returns a dataclasses.field (no shared default object is created); the model is frozen.
    models: ModelsConfig = var("MODELS_CONFIG", parse_models_config)  # noqa: RUF009
    # For the search tool's query embeddings: the model that indexed the tenant's documents.
    embedding_model: str = var("EMBEDDING_MODEL", str, "@cf/baai/bge-base-en-v1.5")
    provider_timeout_s: float = var("PROVIDER_TIMEOUT_S", _seconds, 30.0)
    provider_max_retries: int = var("PROVIDER_MAX_RETRIES", _retries, 3)
    breaker_threshold: int = var("BREAKER_THRESHOLD", positive_int, 5)
    breaker_cooldown_s: float = var("BREAKER_COOLDOWN_S", _seconds, 30.0)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.provider_max_retries, attempt_timeout_s=self.provider_timeout_s)


def load(env: Any) -> DedalusSettings:
    """The settings for ``env`` (cached per distinct set of var values)."""
    try:
        return load_settings(DedalusSettings, env)
    except SettingsError as exc:
        # The generic message repeats the var's value: for a JSON document, name the bad fields only.
        if str(exc).startswith("var MODELS_CONFIG=") and exc.__cause__ is not None:
            raise SettingsError(f"var MODELS_CONFIG is invalid: {exc.__cause__}") from exc.__cause__
        raise
