"""Provider-neutral chat completion: message and tool types (:mod:`edgerag.llm.types`) and the one
normalised event stream dedalus returns (:mod:`edgerag.llm.events`)."""

from edgerag.llm.types import ChatMessage, Role, ToolCall, ToolSpec, Usage

__all__ = ["ChatMessage", "Role", "ToolCall", "ToolSpec", "Usage"]
