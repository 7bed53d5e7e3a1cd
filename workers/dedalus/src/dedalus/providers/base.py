"""The provider port: one small interface for "chat completion, streaming or not, with tools".

An adapter (Workers AI, OpenAI-compatible HTTP, Anthropic Messages) implements :class:`ChatProvider`:

- :meth:`ChatProvider.complete` — one non-streamed completion -> :class:`Completion`;
- :meth:`ChatProvider.stream` — an async iterator of :data:`StreamPart` (``TextDelta`` as text arrives,
  ``ToolCallPart`` once a tool call is complete — adapters assemble argument deltas themselves —,
  ``UsagePart`` when the provider reports usage, and a final ``FinishPart``).

Adapters translate every failure into :class:`ProviderError` with a :class:`FailureKind`, raised with
``from exc``; the resilience layer (retries, backoff, fallbacks, circuit breakers) decides what to do
from the kind alone and never looks at provider-specific errors. Adapters do no retrying and no
timeouts of their own (the caller wraps each attempt in its timeout), and never log or put secrets
(API keys, Authorization headers) in error messages.

To add a provider: a module in this package with a class implementing the two methods, its config in
:mod:`dedalus.routing`, and tests against the scripted provider server (``edgerag_local.fakeprovider``).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgerag.llm.events import FinishReason
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage

__all__ = [
    "ChatProvider",
    "Completion",
    "FailureKind",
    "FinishPart",
    "ProviderError",
    "ProviderRequest",
    "StreamPart",
    "TextDelta",
    "ToolCallPart",
    "UsagePart",
]


@dataclass(frozen=True)
class ProviderRequest:
    """What an adapter sends: ``model`` is the provider's own model name (``gpt-4o-mini``,
    ``claude-sonnet-4-5``, ``@cf/meta/llama-3.1-8b-instruct``), not edgerag's configured id."""

    model: str
    messages: list[ChatMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    # Provider-specific parameters passed through untouched (e.g. Dedalus Labs' ``mcp_servers``).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    finish_reason: FinishReason


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallPart:
    call: ToolCall


@dataclass(frozen=True)
class UsagePart:
    usage: Usage


@dataclass(frozen=True)
class FinishPart:
    finish_reason: FinishReason


StreamPart = TextDelta | ToolCallPart | UsagePart | FinishPart


class FailureKind(enum.Enum):
    """Why a provider call failed; :attr:`retryable` says whether the same call may succeed later."""

    TIMEOUT = "timeout"  # no answer in time (the caller's timeout, or the provider's 408/504)
    RATE_LIMITED = "rate_limited"  # 429 (with ``retry_after`` when the provider sent Retry-After)
    SERVER = "server"  # 5xx, connection reset, DNS: the provider's side
    BAD_RESPONSE = "bad_response"  # invalid JSON, a truncated or malformed stream
    AUTH = "auth"  # 401/403: the API key is wrong or lacks access (not retryable)
    INVALID_REQUEST = "invalid_request"  # 400/404/413/422: this request can never succeed here
    CONFIGURATION = "configuration"  # e.g. the API key secret is missing: nothing was sent

    @property
    def retryable(self) -> bool:
        return self in (
            FailureKind.TIMEOUT,
            FailureKind.RATE_LIMITED,
            FailureKind.SERVER,
            FailureKind.BAD_RESPONSE,
        )


class ProviderError(Exception):
    """A provider call failed. ``message`` is safe to show: it never holds secrets."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind.value}, provider={self.provider!r}, status={self.status}, "
            f"retry_after={self.retry_after}, message={self.message!r})"
        )


class ChatProvider(Protocol):
    """A model provider behind one adapter. ``name`` identifies it in usage rows and circuit breakers."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: ProviderRequest) -> Completion: ...

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamPart]:
        """Yield parts as they arrive; raise :class:`ProviderError` on failure (even mid-stream)."""
