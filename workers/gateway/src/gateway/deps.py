"""Request-scoped dependencies: the env, settings, the clock, the authenticated principal, scopes,
rate limits.

Routes declare what they need (``principal: Principal = Depends(require(Scope.WRITE))``); tests can
swap any of these with ``app.dependency_overrides`` (e.g. :func:`get_clock`, to move time).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from edgerag.counters import UsageCounters
from edgerag.keys import Scope
from edgerag.observability import annotate
from edgerag.problems import Forbidden, RateLimited, Unauthorized
from edgerag.settings import load_settings
from edgerag.store.tenants import Principal, TenantStore
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from gateway.openapi import api_key_scheme, operator_scheme
from gateway.ratelimit import enforce_rate_limit
from gateway.settings import GatewaySettings

__all__ = [
    "ADMIN",
    "CHATTER",
    "READER",
    "WRITER",
    "Clock",
    "get_clock",
    "get_env",
    "get_settings",
    "require",
    "require_operator",
]

Clock = Callable[[], float]


# Every dependency is a coroutine function: FastAPI runs plain functions in a thread pool, and Pyodide
# (Python Workers) cannot start threads. tests/unit/test_gateway_async.py keeps it that way.


async def get_env(request: Request) -> Any:
    return request.scope["env"]


async def get_settings(env: Any = Depends(get_env)) -> GatewaySettings:
    return load_settings(GatewaySettings, env)


async def get_clock() -> Clock:
    """Seconds since the epoch (the runtime's ``Date.now()`` at the edge)."""
    return time.time


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    token = credentials.credentials.strip() if credentials is not None else ""
    return token or None


async def _principal(
    credentials: HTTPAuthorizationCredentials | None = Security(api_key_scheme),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> Principal:
    token = _token(credentials)
    if token is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    principal = await TenantStore(env.DB, clock=clock).authenticate(token)
    if principal is None:
        raise Unauthorized("the API key is unknown or has been revoked")
    annotate(tenant=principal.tenant_id, key_id=principal.key_id)  # the request's log line and metrics
    return principal


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller, checks ``scope`` and applies the tenant's rate limit."""

    async def dependency(
        principal: Principal = Depends(_principal),
        env: Any = Depends(get_env),
        settings: GatewaySettings = Depends(get_settings),
        clock: Clock = Depends(get_clock),
    ) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the '{scope.value}' scope")
        limiter = getattr(env, "RATE_LIMITER", None)
        if limiter is not None:
            try:
                await enforce_rate_limit(
                    limiter, principal.tenant_id, period=settings.rate_limit_period, now=clock()
                )
            except RateLimited:
                # Counted for GET /v1/usage: one D1 write per refusal (edgerag.counters).
                counters = UsageCounters()
                counters.add(principal.tenant_id, "rate_limited")
                await counters.flush(env.DB, clock())
                raise
        return principal

    return dependency


async def require_operator(
    credentials: HTTPAuthorizationCredentials | None = Security(operator_scheme),
    settings: GatewaySettings = Depends(get_settings),
) -> None:
    """Admin endpoints: the operator secret, compared in constant time; disabled when unset."""
    token = _token(credentials)
    if not settings.admin_token:
        raise Forbidden("the admin API is disabled: set the ADMIN_TOKEN secret to enable it")
    if token is None or not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise Unauthorized("the admin API needs the operator token as 'Authorization: Bearer <token>'")


# One dependency per scope, created once (FastAPI caches dependencies by identity within a request).
READER = require(Scope.READ)
WRITER = require(Scope.WRITE)
ADMIN = require(Scope.ADMIN)
# Conversations (chat sessions, answers, OpenAI-compatible routes, user context); implied by admin only.
CHATTER = require(Scope.CHAT)
