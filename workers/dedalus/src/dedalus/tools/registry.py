"""The tool registry: which tools exist, which a call may offer, and running one model-requested call.

A :class:`Tool` declares its name, description, a JSON Schema for its arguments (Draft 2020-12,
top-level ``"type": "object"`` with ``"additionalProperties": false``, no top-level ``oneOf``/``anyOf``
because Anthropic rejects them), the API-key scope it needs (``read`` / ``write`` / ``chat``) and a
coroutine ``run(arguments, ctx)`` returning a JSON-able result.

- :meth:`ToolRegistry.specs` turns the tool names a call asks for into the :class:`ToolSpec` list given
  to the model, or raises :class:`ToolNotAllowedError` (before any model call) naming each tool that
  is unknown, disabled for the tenant or beyond the key's scopes.
- :meth:`ToolRegistry.run` runs one :class:`ToolCall`: unknown tool, invalid JSON, schema-invalid
  arguments, a tool error, an exception or a timeout all come back as a :class:`ToolOutcome` with
  ``ok=False`` and ``{"error": ..., "code": ...}`` content for the model — never an exception. Every
  call, whatever became of it, writes one ``tool_calls_audit`` row (migrations/0005) holding the
  SHA-256 of the canonical arguments, never the arguments.

Who the call is for comes only from ``ctx.call`` (:class:`~edgerag.contracts.dedalus.CallContext`):
no schema offers ``tenant_id`` or ``user``, and ``additionalProperties: false`` rejects a model that
adds them.

Per-tenant enablement lives in D1's ``tenant_tools`` (tenant_id, tool, enabled): no row means the
tool's default, which is on for ``read`` and ``chat`` tools and off for ``write`` tools (a model that
writes into a knowledge base is something a tenant opts into).

Scopes: a key's scopes are strings; ``admin`` implies ``write``, ``chat`` and ``read``, ``write``
implies ``read`` (the hierarchy of :mod:`edgerag.keys`, plus ``chat``).

To add a tool: a module in this package with a ``Tool(...)`` and its run coroutine, listed in
:func:`dedalus.tools.all_tools`; its tenant isolation test goes in tests/integration/test_tools_isolation.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from edgerag.llm.events import ErrorEvent
from edgerag.llm.types import ToolCall, ToolSpec
from edgerag.observability.spans import record_span
from edgerag.problems import Problem
from edgerag.store.d1 import fetch_all, now_iso, run
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from dedalus.turns import ToolContext, TurnFailedError

__all__ = [
    "AuditOutcome",
    "Tool",
    "ToolError",
    "ToolNotAllowedError",
    "ToolOutcome",
    "ToolRegistry",
    "ToolScope",
    "args_sha256",
    "expand_scopes",
]

log = logging.getLogger("dedalus.tools")

ToolScope = Literal["read", "write", "chat"]
AuditOutcome = Literal["ok", "error", "invalid", "denied", "timeout"]
ToolFn = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]

_IMPLIED: Final[dict[str, frozenset[str]]] = {
    "admin": frozenset({"admin", "write", "chat", "read"}),
    "write": frozenset({"write", "read"}),
}
_MAX_ERRORS_SHOWN: Final = 3


class ToolError(Exception):
    """A tool's expected failure (not found, not ready, the model's answer unusable). The message goes
    back to the model: no secrets, SQL or stack traces. ``code`` is a short machine-readable kind."""

    def __init__(self, message: str, *, code: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ToolNotAllowedError(Exception):
    """The call asked for tools it may not offer; raised before any model call.

    ``denied`` maps each refused tool to why: ``unknown``, ``disabled`` (for this tenant) or ``scope``
    (the key lacks the tool's scope). :attr:`status` is 400 when a name is unknown (the request is
    wrong), else 403.
    """

    def __init__(self, denied: dict[str, str], scopes_needed: dict[str, str] | None = None) -> None:
        self.denied = dict(denied)
        self.scopes_needed = dict(scopes_needed or {})
        parts = []
        for name, why in sorted(self.denied.items()):
            if why == "scope":
                parts.append(f"{name} (needs the {self.scopes_needed.get(name, '?')!r} scope)")
            else:
                parts.append(f"{name} ({why})")
        super().__init__("tools not available to this call: " + ", ".join(parts))

    @property
    def status(self) -> int:
        return 400 if "unknown" in self.denied.values() else 403

    def error_event(self) -> ErrorEvent:
        return ErrorEvent(code="invalid_request", message=str(self), status=self.status)

    def __repr__(self) -> str:
        return f"ToolNotAllowedError(denied={self.denied!r})"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    scope: ToolScope
    run: ToolFn = field(repr=False)
    default_enabled: bool | None = None  # None: on unless the tool needs the write scope

    @property
    def enabled_by_default(self) -> bool:
        return self.scope != "write" if self.default_enabled is None else self.default_enabled

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


@dataclass(frozen=True)
class ToolOutcome:
    """One call's result: ``content`` is what the model is given back (JSON text)."""

    ok: bool
    content: str
    latency_ms: float
    outcome: AuditOutcome = "ok"


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for scope in scopes:
        granted |= _IMPLIED.get(scope, frozenset({scope}))
    return frozenset(granted)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def args_sha256(arguments: str) -> str:
    """SHA-256 (hex) of the canonical JSON of the arguments, or of the raw text if it is not JSON."""
    try:
        text = canonical_json(json.loads(arguments or "{}"))
    except ValueError:
        text = arguments
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _error(message: str, code: str) -> str:
    return canonical_json({"error": message, "code": code})


def _path(error: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(root)"


class ToolRegistry:
    """The tools one worker offers. ``timer`` (seconds, monotonic) measures latency; tests pass their own."""

    def __init__(self, tools: Iterable[Tool], *, timer: Callable[[], float] = time.perf_counter) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Any] = {}
        self._timer = timer
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            _check_schema(tool)
            self._tools[tool.name] = tool
            self._validators[tool.name] = Draft202012Validator(tool.parameters)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    async def enabled(self, ctx: ToolContext) -> frozenset[str]:
        """The tools the tenant has on: each tool's default, overridden by its ``tenant_tools`` row."""
        rows = await fetch_all(
            ctx.env.DB, "SELECT tool, enabled FROM tenant_tools WHERE tenant_id = ?1", ctx.call.tenant_id
        )
        overrides = {r["tool"]: bool(r["enabled"]) for r in rows}
        return frozenset(
            name for name, tool in self._tools.items() if overrides.get(name, tool.enabled_by_default)
        )

    async def specs(self, names: Iterable[str], ctx: ToolContext) -> list[ToolSpec]:
        """The specs of the requested tools, in request order; :class:`ToolNotAllowedError` if any of
        them is unknown, disabled for the tenant or needs a scope the key lacks."""
        requested = list(dict.fromkeys(names))
        if not requested:
            return []
        enabled = await self.enabled(ctx)
        scopes = expand_scopes(ctx.call.scopes)
        denied: dict[str, str] = {}
        needed: dict[str, str] = {}
        for name in requested:
            tool = self._tools.get(name)
            if tool is None:
                denied[name] = "unknown"
            elif name not in enabled:
                denied[name] = "disabled"
            elif tool.scope not in scopes:
                denied[name], needed[name] = "scope", tool.scope
        if denied:
            raise ToolNotAllowedError(denied, needed)
        return [self._tools[name].spec() for name in requested]

    async def run(
        self,
        call: ToolCall,
        ctx: ToolContext,
        *,
        offered: Collection[str] | None = None,
        timeout_s: float | None = None,
    ) -> ToolOutcome:
        """Run one call the model asked for. ``offered`` is the set :meth:`specs` allowed for this run
        (a call outside it is unknown to the model; enablement and scope were checked then); without
        it, enablement and scope are checked here. ``timeout_s`` bounds the tool's own run."""
        began = self._timer()
        outcome = await self._run(call, ctx, offered, timeout_s)
        latency_ms = max(0.0, (self._timer() - began) * 1000)
        result = ToolOutcome(outcome[0] == "ok", outcome[1], round(latency_ms, 3), outcome[0])
        outcome_kind = "ok" if result.ok else "error"
        record_span("tool.call", latency_ms, outcome_kind, tool=call.name[:128], result=outcome[0])
        await self._audit(call, ctx, result)
        return result

    async def refuse(self, call: ToolCall, ctx: ToolContext, message: str) -> ToolOutcome:
        """Answer a call without running it (e.g. the run's tool-call budget is spent); audited as denied."""
        result = ToolOutcome(False, _error(message, "limit_exceeded"), 0.0, "denied")
        await self._audit(call, ctx, result)
        return result

    async def _run(
        self, call: ToolCall, ctx: ToolContext, offered: Collection[str] | None, timeout_s: float | None
    ) -> tuple[AuditOutcome, str]:
        tool = self._tools.get(call.name)
        if tool is None or (offered is not None and call.name not in offered):
            available = ", ".join(sorted(offered if offered is not None else self._tools)) or "none"
            return "invalid", _error(f"unknown tool {call.name!r}; available: {available}", "unknown_tool")
        if offered is None:
            if call.name not in await self.enabled(ctx):
                return "denied", _error(f"the tool {call.name!r} is not enabled for this tenant", "denied")
            if tool.scope not in expand_scopes(ctx.call.scopes):
                return "denied", _error(f"the tool {call.name!r} needs the {tool.scope!r} scope", "denied")
        try:
            arguments = call.parsed_arguments()
        except ValueError as exc:
            return "invalid", _error(f"the arguments are not valid JSON: {exc}", "invalid_arguments")
        errors = sorted(self._validators[tool.name].iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            shown = "; ".join(f"{_path(e)}: {e.message}" for e in errors[:_MAX_ERRORS_SHOWN])
            more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
            return "invalid", _error(f"invalid arguments: {shown}{more}", "invalid_arguments")
        try:
            value = await asyncio.wait_for(tool.run(arguments, ctx), timeout_s)
        except TimeoutError:
            # Also a tool's own timeout (say, a slow upstream): to the model, both mean "too slow".
            within = f" within {timeout_s:.3g} s" if timeout_s is not None else ""
            return "timeout", _error(f"the tool did not finish{within}", "timeout")
        except ToolError as exc:
            return "error", _error(exc.message, exc.code)
        except Problem as exc:  # e.g. NotFound from a store: its detail is written to be shown
            code = {404: "not_found", 503: "unavailable"}.get(exc.status, "failed")
            return "error", _error(exc.detail or exc.title, code)
        except TurnFailedError as exc:
            return "error", _error(f"the model call failed: {exc.error.message}", "model_failed")
        except Exception:
            log.exception("tool %s failed (request %s)", tool.name, ctx.call.request_id)
            return "error", _error(f"the tool {tool.name!r} failed unexpectedly", "failed")
        try:
            return "ok", canonical_json(value)
        except (TypeError, ValueError):
            log.exception("tool %s returned a value that is not JSON", tool.name)
            return "error", _error(f"the tool {tool.name!r} failed unexpectedly", "failed")

    async def _audit(self, call: ToolCall, ctx: ToolContext, outcome: ToolOutcome) -> None:
        # An audit failure must not turn a finished call into a crash; it is logged (no arguments).
        try:
            await run(
                ctx.env.DB,
                "INSERT INTO tool_calls_audit (tenant_id, key_id, end_user, request_id, tool, args_sha256,"
                " outcome, latency_ms, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                ctx.call.tenant_id,
                ctx.call.key_id,
                ctx.call.end_user,
                ctx.call.request_id,
                call.name[:128],
                args_sha256(call.arguments),
                outcome.outcome,
                outcome.latency_ms,
                now_iso(),
            )
        except Exception:
            log.exception(
                "could not write the audit row of tool %s (request %s)", call.name[:128], ctx.call.request_id
            )


def _check_schema(tool: Tool) -> None:
    Draft202012Validator.check_schema(tool.parameters)
    schema = tool.parameters
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        raise ValueError(f"tool {tool.name!r}: the schema must be an object with additionalProperties: false")
    if any(key in schema for key in ("oneOf", "anyOf", "allOf")):
        raise ValueError(f"tool {tool.name!r}: no oneOf/anyOf/allOf at the top level (Anthropic rejects it)")
    forbidden = {"tenant_id", "tenant", "user", "end_user", "key_id"} & set(schema.get("properties", {}))
    if forbidden:
        raise ValueError(
            f"tool {tool.name!r}: who the call is for comes from the context, not {sorted(forbidden)}"
        )
