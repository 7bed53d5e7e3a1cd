"""The API's models for tenants and API keys, shared by the tenant (``/v1/keys``) and operator
(``/v1/admin``) routers.

Requests are strict (unknown fields are a 422); responses are built from the store's records with
``from_record`` so the wire shape is declared in one place and documented in ``/openapi.json``. A key's
secret appears in exactly one model, :class:`IssuedKey`, the answer to a create. To add a field:
add it to the store's record first, then here with a description.
"""

from __future__ import annotations

from typing import Literal

from edgerag.store.tenants import TENANT_NAME, ApiKeyRecord, TenantRecord
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApiKey", "ApiKeyList", "IssuedKey", "NewKey", "NewTenant", "ScopeName", "Tenant", "TenantList"]

ScopeName = Literal["read", "chat", "evaluate", "write", "admin"]
Plan = Literal["free", "standard", "enterprise"]
_DEFAULT_SCOPES: tuple[ScopeName, ...] = ("read", "write")


class NewTenant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=TENANT_NAME,
        description="unique; lower-case letters, digits and '-'. Usable wherever a tenant id is.",
        examples=["acme"],
    )
    plan: Plan = "free"


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="a label for humans", examples=["ci"])
    scopes: list[ScopeName] = Field(
        default_factory=lambda: list(_DEFAULT_SCOPES),
        min_length=1,
        description="admin implies write implies read, and admin implies chat (chat: conversations, "
        "answers, OpenAI-compatible routes, user context; a chat-only key cannot upload or delete; "
        "evaluate: retrieval evaluations, implies read, implied by admin); "
        "the key gets the expanded set",
    )


class Tenant(BaseModel):
    id: str = Field(description="tenant id", examples=["tnt_01jz0000000000000000000000"])
    name: str = Field(description="unique tenant name", examples=["acme"])
    plan: str = Field(description="the tenant's plan", examples=["free"])
    status: Literal["active", "suspended"] = Field(description="suspended tenants' keys are refused")
    created_at: str = Field(description="ISO-8601 UTC", json_schema_extra={"format": "date-time"})

    @classmethod
    def from_record(cls, record: TenantRecord) -> Tenant:
        return cls.model_validate(record.to_dict())


class TenantList(BaseModel):
    tenants: list[Tenant] = Field(description="oldest first")


class ApiKey(BaseModel):
    """An API key as listed: never its secret (only the public ``prefix``)."""

    id: str = Field(description="key id, used to revoke it", examples=["key_01jz0000000000000000000000"])
    tenant_id: str = Field(description="the tenant the key belongs to")
    name: str = Field(description="the label given at creation")
    prefix: str = Field(description="the public lookup part of the key (er_<prefix>_...)")
    scopes: list[ScopeName] = Field(
        description="expanded scopes, e.g. ['admin', 'chat', 'evaluate', 'read', 'write']"
    )
    created_at: str = Field(description="ISO-8601 UTC", json_schema_extra={"format": "date-time"})
    last_used_at: str | None = Field(
        description="last successful authentication, ISO-8601 UTC, to within a minute; null if never",
        json_schema_extra={"format": "date-time"},
    )
    revoked_at: str | None = Field(
        description="when the key was revoked (ISO-8601 UTC); null while active",
        json_schema_extra={"format": "date-time"},
    )

    @classmethod
    def from_record(cls, record: ApiKeyRecord) -> ApiKey:
        return cls.model_validate(record.to_dict())


class ApiKeyList(BaseModel):
    keys: list[ApiKey] = Field(description="every key of the tenant, revoked ones included, oldest first")


class IssuedKey(ApiKey):
    """A new key, with its plaintext: shown in this response only, never stored or shown again."""

    key: str = Field(description="the API key itself: send it as 'Authorization: Bearer <key>'")
