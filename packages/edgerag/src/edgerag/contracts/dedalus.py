"""The contract of the dedalus worker (gateway -> dedalus over the service binding).

- ``health()`` over RPC -> :class:`HealthReply`.
- ``models(plan)`` over RPC -> :class:`ModelsReply`: the chat models a call of that plan may name
  (what the gateway's ``GET /v1/models`` lists; the gateway holds no copy of the model config).
- ``POST /v1/chat`` over the binding's ``fetch`` with a :class:`ChatCall` JSON body -> the normalised
  event stream of :mod:`edgerag.llm.events`: ``text/event-stream`` when the call asks for
  ``stream: true`` (fetch, not RPC, because streams over Python RPC are unconfirmed), else one
  ``application/json`` document ``{"events": [...]}`` with the same events.

Who is calling travels as :class:`CallContext`, filled by the gateway from its authentication — never
from anything a model or an end user chose — and every tool, usage row and audit record dedalus writes
is scoped by it. The request id ties usage rows, audit rows and logs of one API request together.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgerag.llm.types import ChatMessage, ToolSpec

__all__ = ["AgentLimits", "CallContext", "ChatCall", "HealthReply", "ModelInfo", "ModelsReply", "Purpose"]

Purpose = Literal["chat", "summarize", "classify"]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class HealthReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    status: Literal["ok", "degraded"]
    bindings: list[str]


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="the configured model id: what a call names as its model")
    provider: str = Field(description="the configured provider name")
    context_window: int = Field(ge=1)
    supports_tools: bool


class ModelsReply(BaseModel):
    """The chat models one plan may use: its primary (``default``) and its override allow-list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: str
    default: str = Field(description="the model a call that names none gets")
    models: list[ModelInfo]


class CallContext(BaseModel):
    """Who the call is for, as the gateway authenticated it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    plan: str = Field(
        default="free", min_length=1, max_length=32, description="the tenant's plan (model tier)"
    )
    key_id: str | None = Field(default=None, max_length=64, description="the API key that made the request")
    scopes: list[str] = Field(default_factory=list, description="the key's scopes; tools require them")
    end_user: str | None = Field(default=None, max_length=128, description="the end user the key acts for")
    request_id: str = Field(min_length=1, max_length=64, pattern=_ID)


class AgentLimits(BaseModel):
    """Bounds on one agent run; the defaults are what a call gets when it names none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=6, ge=1, le=20, description="model turns")
    max_tool_calls: int = Field(default=12, ge=0, le=64, description="tool calls over the whole run")
    deadline_s: float = Field(default=60.0, gt=0, le=300, description="wall-clock budget of the whole run")


class ChatCall(BaseModel):
    """One chat completion or agent run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    context: CallContext
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    purpose: Purpose = "chat"
    model: str | None = Field(
        default=None, max_length=128, description="an override; must be in the tenant's allow-list"
    )
    tools: list[str] = Field(
        default_factory=list, max_length=32, description="registry tools offered to the model; [] = none"
    )
    client_tools: list[ToolSpec] = Field(
        default_factory=list,
        max_length=64,
        description="the caller's own tools (the OpenAI-compatible API): offered to the model but never "
        "run by dedalus; a turn that calls them ends the run with their tool_call events and "
        "finish_reason 'tool_calls'. Not combinable with registry tools.",
    )
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stream: bool = False
    limits: AgentLimits = AgentLimits()  # frozen, so one shared default is safe
    provider_options: dict[str, Any] = Field(
        default_factory=dict,
        description="passed through to OpenAI-compatible providers (e.g. Dedalus Labs' mcp_servers)",
    )

    @model_validator(mode="after")
    def _one_tool_source(self) -> ChatCall:
        # Registry tools are run by the agent loop, client tools are handed back: one run does one.
        if self.tools and self.client_tools:
            raise ValueError("a call offers registry tools or client tools, not both")
        return self
