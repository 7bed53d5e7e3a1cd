"""Sending a chat message: retrieve, build the grounded prompt, ask dedalus, store the answer.

One turn (:class:`ChatTurn`), in this order:

1. :meth:`ChatTurn.prepare` — before anything is stored: the session's recent history, the query
   rewritten for follow-ups (:func:`edgerag.grounding.rewrite_query`), hybrid search over the
   tenant's documents (limited to the session's document filter) through
   :func:`edgerag.grounding.retrieve_sources` (only keyword-matched hits count), numbered from 1
   and fenced into the prompt with the end user's context (:func:`edgerag.grounding.build_messages`).
   A failing search is a 502 here and nothing is stored.
2. The user message (``complete``) and a ``pending`` assistant message are stored in one batch, then
   dedalus is called (:class:`gateway.dedalus.DedalusClient`) with the call context from the
   authenticated principal (tenant, plan, key, scopes, end user, a fresh request id).
3. :meth:`ChatTurn.events` yields what the client sees — ``sources`` first, then ``token``,
   ``tool_call``/``tool_result``, and one ``done`` (the stored assistant :class:`Message`: cleaned
   text, citations, confidence, tool calls, usage) or ``error`` (a problem-details-like object).

The assistant message is never left ``pending`` by this code:

- dedalus's ``done``: ``complete``, with invalid citation markers removed
  (:func:`edgerag.grounding.check_citations`) and :func:`edgerag.grounding.confidence`;
- dedalus's ``error`` after the model was asked (timeouts, provider failures, agent limits, a broken
  stream): ``failed``, or ``interrupted`` when text had already arrived (the partial text kept);
- dedalus refusing the request itself before any model call (``invalid_request``/``unknown_model``
  with a 4xx: a model the plan may not use, tools the key may not use, a prompt too long): the turn
  is removed — user message and all — so that a corrected resend is not a duplicate question in the
  history. The client gets the status and nothing stays half-way;
- the client going away (disconnect, cancellation, the iterator closed) or an exception here:
  ``interrupted`` / ``failed`` with what was produced, and the dedalus stream closed (which cancels
  the run there).

A worker that dies mid-generation cannot finish its row. While streaming, the partial text is
checkpointed every ``CHAT_CHECKPOINT_S`` seconds; whoever next reads the session (GET session,
messages, or a new message) marks messages pending longer than ``CHAT_PENDING_TIMEOUT_S`` (default
10 minutes: past dedalus's longest agent deadline, 5 minutes) as ``interrupted``
(:meth:`edgerag.store.chat.ChatStore.recover_pending`), keeping the last checkpoint's text.

Tokens are streamed as the model writes them, invalid markers included; the ``done`` event's message
is the authoritative text. To add an event for clients: produce an :class:`OutEvent` here and
document it in routes/chat.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from edgerag.contracts.dedalus import CallContext, ChatCall
from edgerag.embedding import Embedder
from edgerag.grounding import (
    Source,
    build_messages,
    check_citations,
    confidence,
    retrieve_sources,
    rewrite_query,
)
from edgerag.ids import new_id
from edgerag.llm import events as ev
from edgerag.llm.types import ChatMessage, Usage
from edgerag.observability import current_request_id
from edgerag.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Problem,
    RateLimited,
    ServiceUnavailable,
    UpstreamFailure,
    ValidationFailed,
)
from edgerag.retrieval.hybrid import SearchRequest
from edgerag.settings import positive_int, var
from edgerag.store.chat import ChatStore, MessageRecord, MessageStatus, SessionRecord, TurnRows
from edgerag.store.tenants import Principal
from edgerag.store.user_context import UserContextStore

from gateway.chat_models import Message
from gateway.dedalus import DedalusClient
from gateway.safety import SafetyGuard, guard_input
from gateway.settings import GatewaySettings
from gateway.sse import OutEvent

__all__ = ["ChatSettings", "ChatTurn", "GatewayTimeout", "TurnInput", "problem_for"]

log = logging.getLogger("edgerag.gateway")

_REFUSALS = frozenset({"invalid_request", "unknown_model"})
_MAX_QUERY_CHARS = 2000


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


@dataclass(frozen=True)
class ChatSettings:
    """The chat knobs (gateway env vars), parsed once per isolate with ``load_settings``."""

    heartbeat_s: float = var("CHAT_HEARTBEAT_S", positive_float, 15.0)
    pending_timeout_s: float = var("CHAT_PENDING_TIMEOUT_S", positive_float, 600.0)
    checkpoint_s: float = var("CHAT_CHECKPOINT_S", positive_float, 2.0)
    top_k: int = var("CHAT_TOP_K", positive_int, 5)
    history_messages: int = var("CHAT_HISTORY_MESSAGES", positive_int, 16)


class GatewayTimeout(Problem):
    """504: the model service gave up within its deadline."""

    status, title, slug = 504, "Gateway Timeout", "timeout"


_KINDS: dict[int, type[Problem]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    502: UpstreamFailure,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}


def problem_for(error: ev.ErrorEvent, **extra: Any) -> Problem:
    """The problem a dedalus error event answers with: its own status (5xx other than 502-504, i.e.
    a bug in dedalus, become 502 — the gateway never answers 500 for another worker's failure)."""
    if error.status == 429:
        return RateLimited(error.message, retry_after=60, code=error.code, **extra)
    kind = _KINDS.get(error.status) or (BadRequest if error.status < 500 else UpstreamFailure)
    if kind is ValidationFailed:
        return ValidationFailed(error.message, code=error.code, **extra)
    return kind(error.message, code=error.code, **extra)


@dataclass(frozen=True)
class TurnInput:
    principal: Principal
    plan: str
    end_user: str
    session: SessionRecord
    content: str
    tools: list[str]
    model: str | None
    stream: bool


def _source_view(source: Source) -> dict[str, Any]:
    return {
        "n": source.n,
        "chunk_id": source.chunk_id,
        "document_id": source.document_id,
        "title": source.title,
        "snippet": source.snippet,
        "score": round(source.score, 6),
    }


def _history(messages: list[MessageRecord]) -> list[ChatMessage]:
    """Earlier turns for the prompt: answers that completed (or were cut off with text), and the
    questions they answered; a question whose answer failed is left out."""
    failed = {m.request_id for m in messages if m.role == "assistant" and m.status in ("failed", "pending")}
    return [
        ChatMessage(role=m.role, content=m.content)
        for m in messages
        if m.request_id not in failed and m.content.strip()
    ]


@dataclass
class _Progress:
    text: list[str] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage: Usage | None = None
    cost_usd: float = 0.0
    model: str | None = None
    last_checkpoint: float = 0.0
    checkpointed: int = 0

    @property
    def started(self) -> bool:
        return bool(self.text or self.tools)


class ChatTurn:
    """One message sent to a session; see the module docstring for the order of things."""

    def __init__(
        self,
        env: Any,
        settings: GatewaySettings,
        chat: ChatSettings,
        turn: TurnInput,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._env = env
        self._settings = settings
        self._chat = chat
        self._in = turn
        self._store = ChatStore(env.DB, clock=clock)
        self._monotonic = monotonic
        self.request_id = current_request_id() or new_id("req", clock=clock)
        self.sources: list[Source] = []
        self._messages: list[ChatMessage] = []
        self.rows: TurnRows | None = None
        self._guard: SafetyGuard | None = None
        self.problem: Problem | None = None  # the error event's problem, once there was one

    @property
    def _tenant(self) -> str:
        return self._in.principal.tenant_id

    async def prepare(self) -> None:
        """Retrieve and build the prompt (nothing stored yet), then store the user and pending rows."""
        recent = await self._store.recent_messages(
            self._tenant, self._in.session.id, self._chat.history_messages
        )
        history = _history(recent)
        # Safety (gateway.safety): the message is checked and the sources screened and neutralised
        # before anything is stored; a refusal is a 422 content-blocked problem.
        self._guard = await guard_input(
            self._env,
            self._in.principal,
            end_user=self._in.end_user,
            request_id=self.request_id,
            text=self._in.content,
        )
        self.sources = await self._guard.screen_sources(
            await self._retrieve(rewrite_query(self._in.content, history))
        )
        user_context = None
        if self._in.end_user:
            record = await UserContextStore(self._env.DB).get(self._tenant, self._in.end_user)
            user_context = None if record is None else record.context.model_dump(mode="json")
        self._messages = build_messages(
            self._in.content, self.sources, history=history, user_context=user_context
        )
        self.rows = await self._store.start_turn(
            self._tenant, self._in.session.id, self._in.content, request_id=self.request_id
        )

    async def _retrieve(self, query: str) -> list[Source]:
        document_ids = self._in.session.document_ids
        if document_ids is not None and not document_ids:
            return []  # an explicit empty filter selects no documents
        request = SearchRequest(
            tenant_id=self._tenant,
            query=query[:_MAX_QUERY_CHARS],
            top_k=self._chat.top_k,
            mode="hybrid",
            document_ids=tuple(document_ids or ()),
            rerank_top_n=self._settings.rerank_top_n,
        )
        embedder = Embedder(self._env.AI, self._settings.embedding_model, truncate=True)
        weights = {"keyword": self._settings.keyword_weight, "vector": self._settings.vector_weight}
        return await retrieve_sources(
            self._env.DB,
            self._env.VECTORS,
            request,
            embedder,
            weights,
            self._settings.rrf_k,
            reranker=self._settings.reranker(self._env.AI),
        )

    def _call(self) -> ChatCall:
        principal = self._in.principal
        return ChatCall(
            context=CallContext(
                tenant_id=principal.tenant_id,
                plan=self._in.plan,
                key_id=principal.key_id,
                scopes=sorted(s.value for s in principal.scopes),
                end_user=self._in.end_user or None,
                request_id=self.request_id,
            ),
            messages=self._messages,
            model=self._in.model,
            tools=self._in.tools,
            stream=self._in.stream,
        )

    def _sources_event(self) -> OutEvent:
        assert self.rows is not None
        return OutEvent(
            "sources",
            _json(
                {
                    "session_id": self._in.session.id,
                    "user_message_id": self.rows.user.id,
                    "message_id": self.rows.assistant.id,
                    "sources": [_source_view(s) for s in self.sources],
                }
            ),
        )

    async def events(self) -> AsyncIterator[OutEvent]:
        """What the client sees, ending with exactly one ``done`` or ``error`` (unless it goes away)."""
        if self.rows is None:
            raise RuntimeError("prepare() first")
        yield self._sources_event()
        progress = _Progress(last_checkpoint=self._monotonic())
        guard = self._guard
        assert guard is not None  # set by prepare(), like rows
        redact = guard.output_filter()  # secrets and tenant patterns, also split across tokens
        stream = DedalusClient(self._env.DEDALUS).chat(self._call())
        finished = False
        try:
            async for event in stream:
                if isinstance(event, ev.TokenEvent):
                    text = redact.feed(event.text)
                    if text:
                        progress.text.append(text)
                        yield OutEvent("token", _json({"text": text}))
                    await self._maybe_checkpoint(progress)
                elif isinstance(event, ev.ToolCallEvent):
                    progress.tools[event.call.id] = {
                        "id": event.call.id,
                        "name": event.call.name,
                        "arguments": event.call.arguments,
                        "step": event.step,
                        "ok": None,
                        "result": None,
                    }
                    yield OutEvent("tool_call", event.model_dump_json(exclude={"type"}))
                elif isinstance(event, ev.ToolResultEvent):
                    entry = progress.tools.get(event.tool_call_id)
                    if entry is not None:
                        entry.update(ok=event.ok, result=event.content)
                    yield OutEvent("tool_result", event.model_dump_json(exclude={"type"}))
                elif isinstance(event, ev.UsageEvent):
                    progress.model = event.model
                elif isinstance(event, ev.DoneEvent):
                    tail = redact.flush()
                    if tail:
                        progress.text.append(tail)
                        yield OutEvent("token", _json({"text": tail}))
                    await guard.record_redactions(redact.redactions)
                    progress.usage, progress.cost_usd, progress.model = (
                        event.usage,
                        event.cost_usd,
                        event.model,
                    )
                    message = await self._finish_complete(progress)
                    finished = True
                    yield OutEvent("done", Message.of(message).model_dump_json())
                    return
                else:  # ErrorEvent: the stream's one terminal event
                    tail = redact.flush()
                    if tail:
                        progress.text.append(tail)
                        yield OutEvent("token", _json({"text": tail}))
                    finished = True
                    yield await self._finish_error(event, progress)
                    return
            finished = True  # DedalusClient always ends terminally; this is a guard against a bug there
            yield await self._finish_error(
                ev.ErrorEvent(code="internal", message="the model service said nothing", status=502),
                progress,
            )
        except (asyncio.CancelledError, GeneratorExit):
            if not finished:
                progress.text.extend(filter(None, [redact.flush()]))  # the held tail is part of the partial
                await self._close(stream)
                await self._finish_interrupted(progress)
            raise
        except Exception:
            if finished:
                raise
            log.exception("chat turn %s failed", self.request_id)
            await self._close(stream)
            finished = True
            yield await self._finish_error(
                ev.ErrorEvent(code="internal", message="the answer failed unexpectedly", status=502),
                progress,
            )
        finally:
            await self._close(stream)

    async def _close(self, stream: AsyncIterator[ev.AnyEvent]) -> None:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                log.exception("closing the dedalus stream of %s failed", self.request_id)

    async def _maybe_checkpoint(self, progress: _Progress) -> None:
        now = self._monotonic()
        if now - progress.last_checkpoint < self._chat.checkpoint_s:
            return
        progress.last_checkpoint = now
        assert self.rows is not None
        await self._store.checkpoint(self._tenant, self.rows.assistant.id, "".join(progress.text))

    def _fields(self, progress: _Progress, text: str) -> dict[str, Any]:
        check = check_citations(text, self.sources)
        usage = None
        if progress.usage is not None:
            usage = {**progress.usage.model_dump(mode="json"), "cost_usd": progress.cost_usd}
        return {
            "content": check.text,
            "sources": [_source_view(s) for s in self.sources],
            "citations": [c.model_dump(mode="json") for c in check.citations],
            "confidence": confidence(self.sources, check) if check.text.strip() else None,
            "tool_calls": list(progress.tools.values()),
            "usage": usage,
            "model": progress.model,
        }

    async def _finish_complete(self, progress: _Progress) -> MessageRecord:
        assert self.rows is not None
        return await self._store.finish_message(
            self._tenant,
            self.rows.assistant.id,
            status="complete",
            **self._fields(progress, "".join(progress.text)),
        )

    async def _finish_interrupted(self, progress: _Progress) -> None:
        assert self.rows is not None
        log.info("chat turn %s: the client went away; keeping the partial answer", self.request_id)
        error = {
            "code": "interrupted",
            "status": 499,
            "message": "the client went away before the answer was complete",
        }
        try:
            await self._store.finish_message(
                self._tenant,
                self.rows.assistant.id,
                status="interrupted",
                error=error,
                **self._fields(progress, "".join(progress.text)),
            )
        except Exception:
            log.exception("storing the interrupted answer of %s failed", self.request_id)

    async def _finish_error(self, error: ev.ErrorEvent, progress: _Progress) -> OutEvent:
        """Store the failure (or drop a refused turn) and make the client's ``error`` event."""
        assert self.rows is not None
        refused = error.code in _REFUSALS and error.status < 500 and not progress.started
        extra: dict[str, Any] = {"message_id": self.rows.assistant.id, "partial": progress.started}
        if refused:
            await self._store.discard_turn(self._tenant, [self.rows.user.id, self.rows.assistant.id])
            extra = {"stored": False, "partial": False}
        else:
            status: MessageStatus = "interrupted" if progress.text else "failed"
            await self._store.finish_message(
                self._tenant,
                self.rows.assistant.id,
                status=status,
                error={"code": error.code, "status": error.status, "message": error.message},
                **self._fields(progress, "".join(progress.text)),
            )
            extra["stored"] = True
        self.problem = problem_for(error, **extra, request_id=self.request_id)  # as every problem body
        return OutEvent("error", _json(self.problem.to_dict()))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
