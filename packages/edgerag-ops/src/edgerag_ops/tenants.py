"""Tenant definitions: one TOML file per deployment target under ``tenants/``, validated up front.

A tenant is one Cloudflare account's copy of the three workers and their resources. It may be a single
customer or a *shared stack* that hosts many small tenants (isolated by tenant id in the data, see
ARCHITECTURE.md). The file says what should exist; nothing here talks to Cloudflare.

Validation fails fast and names the file, the field path and what is wrong::

    tenants/acme.toml: resources.vectorize.metric: must be one of 'cosine', 'euclidean', 'dot-product'

The file holds the NAME of the environment variable that carries the API token, never the token: a
value that looks like a token is rejected and never echoed back.

Resource names in the file are the production names; other environments append ``-<env>`` (see
:meth:`Tenant.resource_names`), so dev and prod never share a database by accident.

To add a field: add it to the right model below (every model forbids unknown keys, so typos fail),
give it a default if existing tenant files should stay valid, and use it in ``edgerag_ops.render``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from edgerag.llm.config import ModelsConfig, ProviderConfig, Routing, reference_problems
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "ENVIRONMENTS",
    "EnvName",
    "Environment",
    "Models",
    "Problem",
    "QueueSettings",
    "RateLimits",
    "ResourceNames",
    "Resources",
    "Tenant",
    "TenantConfigError",
    "VectorizeConfig",
    "load_all",
    "load_each",
    "load_tenant",
]

EnvName = Literal["dev", "staging", "prod"]
ENVIRONMENTS: tuple[EnvName, ...] = ("dev", "staging", "prod")

# Known embedding models and their output width: a tenant whose index width differs from its model's
# would accept no vectors at all, so the mismatch is caught here rather than at the first upload.
EMBEDDING_DIMENSIONS: Mapping[str, int] = {
    "@cf/baai/bge-small-en-v1.5": 384,
    "@cf/baai/bge-base-en-v1.5": 768,
    "@cf/baai/bge-large-en-v1.5": 1024,
}

# Worker names are "<tenant>-edgerag-<worker>[-<env>]" and must stay within Cloudflare's 63 characters:
# 32 + len("-edgerag-gateway-staging") = 56.
_TENANT_NAME = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
# Resource names: lowercase letters, digits and hyphens, starting with a letter (the strictest rule
# among D1, R2, Queues and Vectorize, so one pattern serves all of them).
_RESOURCE_NAME = r"^[a-z][a-z0-9-]*[a-z0-9]$"
_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PROVIDER_NAME = r"^[a-z][a-z0-9-]{0,31}$"
_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HOSTNAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_ROUTE = r"^[a-z0-9*][a-z0-9.*-]*\.[a-z]{2,63}(/\S*)?$"
# Cloudflare API tokens are 40 characters of [A-Za-z0-9_-]; user-chosen variable names are shorter,
# upper-case and word-like. Either shape check failing means "this is probably a secret".
_TOKEN_LIKE = re.compile(r"^[A-Za-z0-9_-]{32,}$")

Metric = Literal["cosine", "euclidean", "dot-product"]
MetadataType = Literal["string", "number", "boolean"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


ResourceName = Annotated[str, Field(pattern=_RESOURCE_NAME, min_length=3, max_length=63)]


class D1Config(_Model):
    database_name: ResourceName


class KVConfig(_Model):
    namespace_title: Annotated[str, Field(min_length=1, max_length=512)]


class R2Config(_Model):
    bucket_name: ResourceName


class VectorizeConfig(_Model):
    index_name: Annotated[str, Field(pattern=_RESOURCE_NAME, min_length=2, max_length=32)]
    dimensions: Annotated[int, Field(ge=1, le=1536)]
    metric: Metric
    # Vectorize allows at most 10 metadata indexes per index, and they must exist before vectors.
    metadata_indexes: Annotated[dict[str, MetadataType], Field(max_length=10)] = Field(default_factory=dict)

    @field_validator("metadata_indexes")
    @classmethod
    def _property_names(cls, value: dict[str, str]) -> dict[str, str]:
        for prop in value:
            if not prop or len(prop.encode()) > 512:
                raise ValueError(f"metadata index property {prop!r} must be 1..512 bytes")
        return value


class QueueSettings(_Model):
    """Consumer settings for the ingest queue; ``None`` keeps the repository config's value."""

    max_batch_size: Annotated[int, Field(ge=1, le=100)] | None = None
    max_batch_timeout: Annotated[int, Field(ge=0, le=60)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay: Annotated[int, Field(ge=0, le=86400)] | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=250)] | None = None


class QueuesConfig(_Model):
    ingest: ResourceName
    dead_letter: ResourceName
    consumer: QueueSettings = Field(default_factory=QueueSettings)

    @model_validator(mode="after")
    def _distinct(self) -> QueuesConfig:
        if self.ingest == self.dead_letter:
            raise ValueError("@dead_letter: must differ from ingest (a queue cannot dead-letter into itself)")
        return self


class Resources(_Model):
    d1: D1Config
    kv: KVConfig
    r2: R2Config
    vectorize: VectorizeConfig
    queues: QueuesConfig


class Models(Routing):
    """``[models]``: the embedding model, plus the chat routing, catalog and plans of
    :class:`edgerag.llm.config.Routing` (rendered into dedalus's ``MODELS_CONFIG``)."""

    embedding: Annotated[str, Field(min_length=1)]

    def models_config(self, providers: Mapping[str, ProviderConfig]) -> ModelsConfig:
        routing = Routing.model_validate(self.model_dump(exclude={"embedding"}))
        return ModelsConfig(providers=dict(providers), models=routing)


class RateLimits(_Model):
    requests_per_period: Annotated[int, Field(ge=1)]
    period: Literal[10, 60]
    # The ratelimit binding's namespace_id: an account-unique positive integer written as a string.
    namespace_id: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,9}$")] = "1001"


VarName = Annotated[str, Field(pattern=_VAR_NAME)]


class Environment(_Model):
    workers_dev: bool = False
    route: Annotated[str, Field(pattern=_ROUTE)] | None = None
    # The zone a route belongs to; when omitted, wrangler looks it up from the route's host.
    zone_name: Annotated[str, Field(pattern=_HOSTNAME, max_length=253)] | None = None
    custom_domain: Annotated[str, Field(pattern=_HOSTNAME, max_length=253)] | None = None
    vars: dict[VarName, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reachable(self) -> Environment:
        if self.route and self.custom_domain:
            raise ValueError("@custom_domain: set either route or custom_domain, not both")
        return self


@dataclass(frozen=True)
class ResourceNames:
    """The concrete resource names of one tenant in one environment."""

    d1: str
    kv: str
    r2: str
    vectorize: str
    ingest_queue: str
    dead_letter_queue: str
    # The Analytics Engine dataset of the workers' metrics: ``<tenant>_edgerag_metrics[_<env>]``
    # (SQL table names take underscores, not hyphens). Created by the platform on first write.
    metrics_dataset: str = ""


class Tenant(_Model):
    name: Annotated[str, Field(pattern=_TENANT_NAME)]
    account_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    api_token_env: str
    plan: Literal["free", "standard", "enterprise"]
    shared_stack: bool = False
    environments: Annotated[dict[EnvName, Environment], Field(min_length=1)]
    resources: Resources
    providers: dict[Annotated[str, Field(pattern=_PROVIDER_NAME)], ProviderConfig] = Field(
        default_factory=dict
    )
    models: Models
    rate_limits: RateLimits
    vars: dict[VarName, str] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("api_token_env")
    @classmethod
    def _env_var_name(cls, value: str) -> str:
        # Never include the value in the message: if it is a token, the error must not leak it.
        if _ENV_VAR_NAME.match(value) is None:
            hint = " (the value looks like a token: put the token in the environment, not in this file)"
            raise ValueError(
                "must be the NAME of an environment variable (A-Z, 0-9, _)"
                + (hint if _TOKEN_LIKE.match(value) else "")
            )
        if len(value) >= 32 and "_" not in value and any(c.isdigit() for c in value):
            raise ValueError(
                "looks like a token, not an environment variable name: put the token in the environment"
            )
        return value

    @model_validator(mode="after")
    def _embedding_width(self) -> Tenant:
        expected = EMBEDDING_DIMENSIONS.get(self.models.embedding)
        if expected is not None and expected != self.resources.vectorize.dimensions:
            raise ValueError(
                f"@resources.vectorize.dimensions: is {self.resources.vectorize.dimensions} but "
                f"models.embedding {self.models.embedding!r} produces {expected}-dimensional vectors"
            )
        return self

    @model_validator(mode="after")
    def _model_references(self) -> Tenant:
        problems = reference_problems(self.providers, self.models)
        if problems:
            path, message = problems[0]
            raise ValueError(f"@{path}: {message}")
        return self

    def models_config(self) -> ModelsConfig:
        """The providers and chat routing, as dedalus's ``MODELS_CONFIG`` holds them."""
        return self.models.models_config(self.providers)

    # Shortcuts used throughout the ops code and by the local runtime.
    @property
    def d1(self) -> D1Config:
        return self.resources.d1

    @property
    def kv(self) -> KVConfig:
        return self.resources.kv

    @property
    def r2(self) -> R2Config:
        return self.resources.r2

    @property
    def vectorize(self) -> VectorizeConfig:
        return self.resources.vectorize

    @property
    def queues(self) -> QueuesConfig:
        return self.resources.queues

    @property
    def source(self) -> Path:
        """The file this tenant was loaded from (``tenants/<name>.toml`` when built in code)."""
        return self._source or Path("tenants") / f"{self.name}.toml"

    def environment(self, env: str) -> Environment:
        """The named environment, or :class:`TenantConfigError` if the tenant does not define it."""
        for key, value in self.environments.items():
            if key == env:
                return value
        defined = ", ".join(sorted(self.environments))
        raise TenantConfigError(
            self.source,
            [Problem(f"environments.{env}", f"tenant {self.name!r} does not define it (defined: {defined})")],
        )

    def resource_names(self, env: str) -> ResourceNames:
        """Concrete names in ``env``: production uses the file's names, other environments add ``-<env>``."""
        self.environment(env)
        suffix = "" if env == "prod" else f"-{env}"
        return ResourceNames(
            d1=self.d1.database_name + suffix,
            kv=self.kv.namespace_title + suffix,
            r2=self.r2.bucket_name + suffix,
            vectorize=self.vectorize.index_name + suffix,
            ingest_queue=self.queues.ingest + suffix,
            dead_letter_queue=self.queues.dead_letter + suffix,
            metrics_dataset=f"{self.name}_edgerag_metrics{suffix}".replace("-", "_"),
        )

    def worker_name(self, worker: str, env: str) -> str:
        """``<tenant>-edgerag-<worker>`` in prod, ``<tenant>-edgerag-<worker>-<env>`` elsewhere."""
        base = f"{self.name}-edgerag-{worker}"
        return base if env == "prod" else f"{base}-{env}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a tenant file: the dotted field path and what is wrong with it."""

    field: str
    message: str


class TenantConfigError(Exception):
    """A tenant file is unreadable or invalid. ``str()`` names the file, each field and the problem."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = [f"{path}: {p.field}: {p.message}" for p in self.problems]
        super().__init__("\n".join(lines))

    @property
    def field(self) -> str:
        """The first offending field's dotted path."""
        return self.problems[0].field if self.problems else ""

    def __repr__(self) -> str:
        return f"TenantConfigError({str(self.path)!r}, {[p.field for p in self.problems]!r})"


# Fields whose input must never be echoed in an error (it may be a secret pasted by mistake): the
# account token's variable name, a provider's key secret name, its URL (user:key@host) and its headers.
_SENSITIVE_FIELDS = {"api_token_env", "api_key_secret", "base_url", "headers"}


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]":
            continue  # pydantic marks a bad mapping key this way; the key itself is already in loc
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<file>"


_PATTERN_HELP = {
    _TENANT_NAME: "a slug of 2-32 lowercase letters, digits and hyphens, starting with a letter",
    _RESOURCE_NAME: "lowercase letters, digits and hyphens, from a letter to a letter or digit",
    _VAR_NAME: "a variable name (letters, digits and _, not starting with a digit)",
    _HOSTNAME: "a lowercase hostname such as rag.example.com",
    _ROUTE: "a route pattern such as api.example.com/rag/*",
    r"^[0-9a-f]{32}$": "32 lowercase hexadecimal characters (the account id from the dashboard)",
    r"^[1-9][0-9]{0,9}$": "a positive integer written as a string",
    _PROVIDER_NAME: "a provider name of lowercase letters, digits and hyphens, starting with a letter",
    r"^[A-Z][A-Z0-9_]{0,63}$": "the NAME of a worker secret (A-Z, 0-9, _), never the key itself",
}


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see tenants/local.toml for the accepted fields)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        return "must be " + _PATTERN_HELP.get(pattern, f"a string matching {pattern}")
    if kind == "literal_error":
        return "must be " + msg.removeprefix("Input should be ")
    return msg[0].lower() + msg[1:] if msg else kind


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = _describe(error)
        # Cross-field checks (model validators) name the field they blame as "@a.b: message".
        if message.startswith("@") and ": " in message:
            target, message = message[1:].split(": ", 1)
            loc = (*loc, *target.split("."))
        field = _field_path(loc)
        sensitive = any(str(part) in _SENSITIVE_FIELDS for part in loc)
        if not sensitive and error["type"] not in ("missing", "extra_forbidden"):
            shown = error.get("input")
            if isinstance(shown, str | int | float | bool):
                message += f" (got {shown!r})"
        problems.append(Problem(field, message))
    return problems


def load_tenant(path: Path | str) -> Tenant:
    """Read and validate one tenant file; the file's stem must equal the tenant's ``name``."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TenantConfigError(file, [Problem("<file>", "no such tenant file")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TenantConfigError(file, [Problem("<file>", f"cannot read: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise TenantConfigError(file, [Problem("<toml>", f"not valid TOML: {exc}")]) from exc
    try:
        tenant = Tenant.model_validate(raw)
    except ValidationError as exc:
        raise TenantConfigError(file, _problems(exc)) from exc
    if tenant.name != file.stem:
        raise TenantConfigError(
            file, [Problem("name", f"must equal the file name {file.stem!r} (got {tenant.name!r})")]
        )
    tenant._source = file
    return tenant


def _tenant_files(tenants_dir: Path | str) -> list[Path]:
    folder = Path(tenants_dir)
    if not folder.is_dir():
        raise TenantConfigError(folder, [Problem("<dir>", "tenants directory does not exist")])
    return sorted(folder.glob("*.toml"))


def load_each(tenants_dir: Path | str) -> list[Tenant | TenantConfigError]:
    """Every tenant file in name order, each either a :class:`Tenant` or the error that file has.

    ``deploy-all`` uses this to report a broken file as one failed tenant and carry on with the rest.
    """
    results: list[Tenant | TenantConfigError] = []
    for file in _tenant_files(tenants_dir):
        try:
            results.append(load_tenant(file))
        except TenantConfigError as exc:
            results.append(exc)
    return results


def load_all(tenants_dir: Path | str) -> list[Tenant]:
    """Every tenant in name order; raises the first file's :class:`TenantConfigError` (fail fast)."""
    tenants: list[Tenant] = []
    for item in load_each(tenants_dir):
        if isinstance(item, TenantConfigError):
            raise item
        tenants.append(item)
    return tenants
