"""The provider-neutral vocabulary of chat completion: messages, tools, tool calls, usage.

Every provider adapter in dedalus translates between these and its own wire format (OpenAI chat
completions, Anthropic Messages, Workers AI), and the gateway speaks only these, so a new provider is
one adapter and never a change to callers. The shapes follow OpenAI's chat completions (the lingua
franca of the field): ``role`` / ``content`` messages, ``tool_calls`` with JSON-string ``arguments``
on assistant messages, and ``tool`` messages answering a ``tool_call_id``.

All models are frozen pydantic models with ``extra="forbid"``: they cross the service binding as
plain dicts (``model_dump(mode="json")``) and are validated again on the other side.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ChatMessage", "Role", "ToolCall", "ToolSpec", "Usage"]

Role = Literal["system", "user", "assistant", "tool"]
_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"  # the intersection of what OpenAI and Anthropic accept


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolSpec(_Frozen):
    """A tool offered to the model: name, what it does, and a JSON Schema for its arguments."""

    name: str = Field(pattern=_NAME)
    description: str = Field(max_length=4096)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCall(_Frozen):
    """A call the model asked for. ``arguments`` is the model's JSON text, unparsed: models emit
    invalid JSON, and that must reach the tool runtime (which reports it back to the model) rather
    than fail the whole turn at parse time."""

    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments as JSON (raises ``ValueError`` if the model produced invalid JSON)."""
        return json.loads(self.arguments or "{}")


class ChatMessage(_Frozen):
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @field_validator("tool_calls")
    @classmethod
    def _non_empty(cls, value: list[ToolCall] | None) -> list[ToolCall] | None:
        return value or None


class Usage(_Frozen):
    """Tokens one model call consumed. ``estimated`` is True when the provider reported nothing and
    the counts come from :func:`edgerag.tokens.estimate_tokens` (an upper bound)."""

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cached_prompt_tokens: int = Field(
        default=0, ge=0, description="prompt tokens served from a provider cache"
    )
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            estimated=self.estimated or other.estimated,
        )
