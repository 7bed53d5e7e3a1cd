"""The one normalised event stream dedalus sends back for every chat or agent call.

Whatever the provider (Workers AI, an OpenAI-compatible server, Anthropic), the caller sees the same
events, in this order: ``token`` events as text arrives; for agent calls ``tool_call`` and
``tool_result`` events around each tool run; a ``usage`` event after each model call; and exactly one
terminal event — ``done`` (with the finish reason and the totals) or ``error`` (typed, with the HTTP
status the gateway should answer with and whether any tokens had already been sent).

On the wire (dedalus -> gateway over the service binding's ``fetch``) each event is one server-sent
event whose ``event`` field is the type and whose ``data`` is the event's JSON (:func:`encode`);
:func:`decode` turns an :class:`edgerag.sse.SseEvent` back into a model. Without streaming, dedalus
answers one JSON document holding the same events (``{"events": [...]}``), so both paths share one
parser. Heartbeat comments may appear between events and carry nothing.

To add an event type: a model with a ``type`` literal, added to :data:`ChatEvent`; old callers must
ignore unknown types (``decode`` raises :class:`UnknownEventError`, which callers may skip).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from edgerag.llm.types import ToolCall, Usage
from edgerag.sse import SseEvent, encode_event

__all__ = [
    "AnyEvent",
    "ChatEvent",
    "DoneEvent",
    "ErrorCode",
    "ErrorEvent",
    "FinishReason",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "UnknownEventError",
    "UsageEvent",
    "decode",
    "encode",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "limit"]
ErrorCode = Literal[
    "invalid_request",  # the call itself is wrong (bad model override, prompt too long): 4xx, never retried
    "unknown_model",  # a model the configuration does not know
    "unavailable",  # every model in the chain failed or its circuit is open
    "timeout",  # the provider did not answer within the per-attempt timeout (after retries)
    "rate_limited",  # the provider kept answering 429 (after retries)
    "upstream",  # the provider failed (5xx, invalid JSON, truncated stream) after retries
    "configuration",  # e.g. a provider's API key secret is missing
    "limit_exceeded",  # the agent hit max steps / tool calls / deadline
    "interrupted",  # the stream failed after tokens were sent: never retried (it would duplicate text)
    "internal",  # a bug in dedalus: logged there, nothing revealed
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TokenEvent(_Event):
    type: Literal["token"] = "token"
    text: str


class ToolCallEvent(_Event):
    type: Literal["tool_call"] = "tool_call"
    step: int = Field(ge=1, description="the agent step (model turn) that asked for the call")
    call: ToolCall


class ToolResultEvent(_Event):
    type: Literal["tool_result"] = "tool_result"
    step: int = Field(ge=1)
    tool_call_id: str
    name: str
    ok: bool
    content: str = Field(description="what the model is given back: the tool's JSON result or the error")
    latency_ms: float = Field(ge=0)


class UsageEvent(_Event):
    type: Literal["usage"] = "usage"
    model: str = Field(description="the configured model id that answered")
    provider: str
    usage: Usage
    cost_usd: float = Field(default=0.0, ge=0)


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str = Field(description="for humans; never holds secrets or provider credentials")
    status: int = Field(ge=400, le=599, description="the HTTP status a caller should answer with")
    retryable: bool = False
    partial: bool = Field(default=False, description="True when token events were sent before the failure")


class DoneEvent(_Event):
    type: Literal["done"] = "done"
    finish_reason: FinishReason
    model: str
    provider: str
    usage: Usage = Field(description="totals over every model call of this request")
    cost_usd: float = Field(default=0.0, ge=0)
    steps: int = Field(default=1, ge=0, description="model turns taken")


ChatEvent = Annotated[
    TokenEvent | ToolCallEvent | ToolResultEvent | UsageEvent | ErrorEvent | DoneEvent,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ChatEvent)
_TYPES = frozenset({"token", "tool_call", "tool_result", "usage", "error", "done"})


class UnknownEventError(ValueError):
    """An event type this version does not know (a newer dedalus): skip it."""


AnyEvent = TokenEvent | ToolCallEvent | ToolResultEvent | UsageEvent | ErrorEvent | DoneEvent


def encode(event: AnyEvent) -> bytes:
    """One event as a server-sent event (``event: <type>``, ``data: <json>``)."""
    return encode_event(event.model_dump_json(), event=event.type)


def decode(sse: SseEvent) -> AnyEvent:
    """The :data:`ChatEvent` an SSE event carries (``ValueError`` if it is not a valid one)."""
    if sse.event not in _TYPES:
        raise UnknownEventError(f"unknown event type {sse.event!r}")
    try:
        return validate(sse.data, expected=sse.event)
    except ValidationError as exc:
        raise ValueError(f"invalid {sse.event} event: {exc.error_count()} error(s)") from exc


def validate(data: str | bytes | dict[str, Any], *, expected: str | None = None) -> AnyEvent:
    """A :data:`ChatEvent` from its JSON text or dict."""
    event: AnyEvent = (
        _ADAPTER.validate_json(data) if isinstance(data, str | bytes) else _ADAPTER.validate_python(data)
    )
    if expected is not None and event.type != expected:
        raise ValueError(f"the event field says {expected!r} but the data is a {event.type!r} event")
    return event
