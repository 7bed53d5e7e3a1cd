"""The chat API's wire models: sessions, messages, and what sending a message takes and returns.

Requests are strict (unknown fields are a 422). Responses are built from the store's records
(:mod:`edgerag.store.chat`) with ``of(...)`` so the shape is declared once and documented in
``/openapi.json``; the streamed ``done`` event carries the same :class:`Message` as the JSON reply.
To add a field: the store's record first, then here with a description.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from edgerag.store.chat import MessageRecord, SessionRecord
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "MAX_MESSAGE_CHARS",
    "SESSION_ID",
    "ChatError",
    "Message",
    "MessageCitation",
    "MessageList",
    "MessageSource",
    "MessageToolCall",
    "MessageUsage",
    "NewSession",
    "SendMessage",
    "Session",
    "SessionList",
]

# What edgerag.ids.new_id("ses") makes; routing on it keeps other paths from matching "/{session_id}".
SESSION_ID = "ses_[0-9a-z]{26}"
DOCUMENT_ID = "doc_[0-9a-z]{26}"
MAX_MESSAGE_CHARS = 8000
MAX_TITLE_CHARS = 200
_TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
_MODEL_ID = r"^[A-Za-z0-9@][A-Za-z0-9@/_.:+-]{0,127}$"


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS, description="for humans")
    document_ids: list[str] | None = Field(
        None,
        max_length=50,
        description="answer only from these documents (ids that are not the tenant's match nothing); "
        "omitted or null: every document of the tenant",
        json_schema_extra={"items": {"type": "string", "pattern": f"^{DOCUMENT_ID}$"}},
    )

    @field_validator("document_ids")
    @classmethod
    def _document_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for item in value:
            if re.fullmatch(DOCUMENT_ID, item) is None:
                raise ValueError(f"{item[:40]!r} is not a document id (doc_ + 26 characters)")
        return list(dict.fromkeys(value))


class Session(BaseModel):
    id: str = Field(description="ses_ + 26 characters")
    title: str | None
    document_ids: list[str] | None = Field(description="the document filter; null: every document")
    message_count: int = Field(ge=0, description="messages in the session, user and assistant")
    created_at: str = Field(description="ISO-8601 UTC", json_schema_extra={"format": "date-time"})
    updated_at: str = Field(
        description="the last message's time (ISO-8601 UTC)", json_schema_extra={"format": "date-time"}
    )

    @classmethod
    def of(cls, record: SessionRecord) -> Session:
        return cls(
            id=record.id,
            title=record.title,
            document_ids=None if record.document_ids is None else list(record.document_ids),
            message_count=record.message_count,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class SessionList(BaseModel):
    sessions: list[Session] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class MessageSource(BaseModel):
    n: int = Field(ge=1, description="the number the answer cites as [n]")
    chunk_id: str
    document_id: str
    title: str
    snippet: str = Field(description="a short window of the passage given to the model")
    score: float = Field(description="fused retrieval score; higher is better")


class MessageCitation(BaseModel):
    n: int = Field(ge=1)
    chunk_id: str
    document_id: str
    title: str


class MessageToolCall(BaseModel):
    id: str
    name: str
    arguments: str = Field(description="the model's JSON text")
    step: int = Field(ge=1, description="the agent step that asked for it")
    ok: bool | None = Field(description="whether the tool succeeded; null if it never answered")
    result: str | None = Field(description="what the model was given back")


class MessageUsage(BaseModel):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_prompt_tokens: int = Field(ge=0)
    estimated: bool = Field(description="true when the provider reported nothing and counts are estimates")
    cost_usd: float = Field(ge=0)


class ChatError(BaseModel):
    code: str = Field(description="the model service's error code (timeout, unavailable, interrupted, ...)")
    status: int = Field(ge=400, le=599)
    message: str


class Message(BaseModel):
    id: str = Field(description="msg_ + 26 characters")
    session_id: str
    seq: int = Field(ge=1, description="position in the session, from 1")
    role: Literal["user", "assistant"]
    content: str = Field(
        description="the text; for an answer, with citation markers that name no source removed"
    )
    status: Literal["pending", "complete", "failed", "interrupted"] = Field(
        description="user messages: complete; answers: pending -> complete | failed | interrupted "
        "(interrupted keeps the partial text)"
    )
    sources: list[MessageSource] = Field(description="answers: the passages given to the model")
    citations: list[MessageCitation] = Field(description="answers: the sources the text cites")
    confidence: float | None = Field(
        description="answers: 0..1 from retrieval scores and citation coverage (not asked of the model)"
    )
    tool_calls: list[MessageToolCall] = Field(description="answers: tools the model ran (agent mode)")
    usage: MessageUsage | None = Field(description="answers: tokens and cost over every model call")
    model: str | None = Field(description="answers: the configured model that answered")
    error: ChatError | None = Field(description="failed or interrupted answers: what happened")
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})

    @classmethod
    def of(cls, record: MessageRecord) -> Message:
        data: dict[str, Any] = {
            "id": record.id,
            "session_id": record.session_id,
            "seq": record.seq,
            "role": record.role,
            "content": record.content,
            "status": record.status,
            "sources": record.sources,
            "citations": record.citations,
            "confidence": record.confidence,
            "tool_calls": record.tool_calls,
            "usage": record.usage,
            "model": record.model,
            "error": record.error,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        return cls.model_validate(data)


class MessageList(BaseModel):
    messages: list[Message] = Field(description="oldest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        pattern=r"\S",
        description=f"the user's message (1 to {MAX_MESSAGE_CHARS:,} characters, not only whitespace)",
    )
    tools: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="agent mode: registry tools the model may call (search_knowledge_base, summarize, "
        "...), subject to the key's scopes and the tenant's enabled tools; [] = plain grounded chat",
        json_schema_extra={"items": {"type": "string", "pattern": _TOOL_NAME}},
    )
    model: str | None = Field(
        None, max_length=128, pattern=_MODEL_ID, description="a model the tenant's plan allows"
    )
    stream: bool | None = Field(
        None,
        description="true: text/event-stream; false: one JSON reply; null: decided by the Accept header",
    )

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is empty")
        return value.strip()

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if re.fullmatch(_TOOL_NAME[1:-1], name) is None:
                raise ValueError(f"{name[:70]!r} is not a tool name")
        return list(dict.fromkeys(value))
