"""``get_user_context``: the stored goals, constraints and preferences of the call's end user.

The end user is the one the gateway authenticated (``ctx.call.end_user``); the tool takes no
arguments, so a model cannot ask for someone else's record. The record is read with the call's tenant
(:class:`~edgerag.store.user_context.UserContextStore`).
"""

from __future__ import annotations

from typing import Any

from edgerag.store.user_context import UserContextStore

from dedalus.tools.registry import Tool, ToolError
from dedalus.turns import ToolContext

__all__ = ["GET_USER_CONTEXT"]


async def get_user_context(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    end_user = ctx.call.end_user
    if not end_user:
        raise ToolError(
            "this call is not made for an end user, so there is no user context", code="no_end_user"
        )
    record = await UserContextStore(ctx.env.DB).get(ctx.call.tenant_id, end_user)
    if record is None:
        return {"end_user": end_user, "found": False, "goals": [], "constraints": [], "preferences": {}}
    return {"found": True, **record.to_public()}


GET_USER_CONTEXT = Tool(
    name="get_user_context",
    description="The current end user's stored goals, constraints and preferences (no arguments).",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    scope="read",
    run=get_user_context,
)
