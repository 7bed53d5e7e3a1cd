"""An end user's context: ``GET/PUT /v1/users/{user_id}/context`` (``chat`` scope).

``user_id`` is the end user id the tenant's application sends as ``X-End-User`` (same rule, see
:mod:`gateway.enduser`); the record is the tenant's (:mod:`edgerag.store.user_context`), so another
tenant's "alice" is a different person. The context (goals, constraints, preferences) is written into
chat prompts as data and read by the ``get_user_context`` tool. PUT replaces the whole record,
validated with the store's model (unknown fields, over-long items or more than 8 KiB of JSON: 422).
GET of a user with no record is a 404; so is a path whose user id breaks the rule (no such route).
"""

from __future__ import annotations

from typing import Any

from edgerag.problems import NotFound
from edgerag.store.tenants import Principal
from edgerag.store.user_context import UserContext, UserContextRecord, UserContextStore
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import CHATTER, get_env
from gateway.enduser import END_USER_PATTERN
from gateway.openapi import problems
from gateway.paging import id_path

_USER_ID = id_path(
    "end_user", END_USER_PATTERN[1:-1], "the end user id (as sent in X-End-User); any other path is a 404"
)

router = APIRouter(prefix="/v1/users", tags=["users"])


def _closed_preferences(schema: dict[str, Any]) -> None:
    # pydantic publishes the key rule as patternProperties, under which a key that breaks the pattern
    # would be unconstrained; the API refuses such keys, so the schema says so.
    schema["properties"]["preferences"]["additionalProperties"] = False


class UserContextBody(UserContext):
    """The store's model, strict: a JSON string is never coerced into a number ("0001" is no 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, json_schema_extra=_closed_preferences)


class UserContextOut(BaseModel):
    end_user: str = Field(description="the end user id")
    goals: list[str] = Field(description="what the user is trying to achieve")
    constraints: list[str] = Field(description="limits answers must respect")
    preferences: dict[str, str | int | float | bool | None] = Field(
        description="key/value preferences (tone, units, language, ...)"
    )
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})

    @classmethod
    def of(cls, record: UserContextRecord) -> UserContextOut:
        return cls.model_validate(record.to_public())


@router.get("/{user_id:end_user}/context", responses=problems(401, 403, 404, 429))
async def get_user_context(
    user_id: str = _USER_ID, principal: Principal = Depends(CHATTER), env: Any = Depends(get_env)
) -> UserContextOut:
    record = await UserContextStore(env.DB).get(principal.tenant_id, user_id)
    if record is None:
        raise NotFound(f"no context stored for end user {user_id!r}")
    return UserContextOut.of(record)


@router.put(
    "/{user_id:end_user}/context",
    responses={201: {"model": UserContextOut, "description": "Created"}, **problems(401, 403, 404, 422, 429)},
)
async def put_user_context(
    body: UserContextBody,
    response: Response,
    user_id: str = _USER_ID,
    principal: Principal = Depends(CHATTER),
    env: Any = Depends(get_env),
) -> UserContextOut:
    """Create or replace the end user's context (200 replaced, 201 created)."""
    store = UserContextStore(env.DB)
    existed = await store.get(principal.tenant_id, user_id) is not None
    record = await store.put(principal.tenant_id, user_id, UserContext.model_validate(body.model_dump()))
    if not existed:
        response.status_code = 201
    return UserContextOut.of(record)
