"""From dedalus's normalised event stream to OpenAI's ``chat.completion`` and its streamed chunks.

Non-streamed (:func:`completion`): every event is collected; the answer's citation markers are checked
against the sources the model was given (:func:`edgerag.grounding.check_citations`: markers naming
no given source are removed from the text and counted), and the ``edgerag`` extension carries the
sources and the valid citations. A terminal ``error`` event becomes an OpenAI-shaped error with the
status dedalus chose (an unknown model: 404 ``model_not_found``).

Streamed (:func:`stream_chunks`, server-sent events): the first event is awaited before the response
starts, so a call that fails before any text (unknown model, every provider down, a prompt too long)
is still an ordinary HTTP error. Then: a first chunk with ``role``, one chunk per ``token`` event, one
per client tool call (``delta.tool_calls`` with its index, id, name and arguments), a finishing chunk
with ``finish_reason`` and the ``edgerag`` extension (citations checked on the whole text; text
already sent cannot be changed, so invalid markers are only counted), a usage chunk with empty
``choices`` when ``stream_options.include_usage`` is set, and ``data: [DONE]``. An error after the
first chunk is sent as ``data: {"error": {...}}`` and the stream ends without ``[DONE]`` (what the
official SDKs raise ``APIError`` on). When the client goes away, the generator is closed, which closes
the stream from dedalus: generation stops there.

dedalus finish reasons map onto OpenAI's; ``limit`` (an agent limit, which a call without registry
tools does not reach) is reported as ``length``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from edgerag.grounding import Source, check_citations
from edgerag.llm import events
from edgerag.llm.types import ToolCall, Usage

from gateway.openai_api.errors import OpenAIErrorBody, OpenAIProblem, to_openai
from gateway.openai_api.models import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    ChunkToolCall,
    ChunkToolCallFunction,
    CitationOut,
    CompletionUsage,
    Delta,
    EdgeragExtension,
    FinishReason,
    ResponseFunctionCall,
    ResponseMessage,
    ResponseToolCall,
    SourceOut,
)

__all__ = ["Reply", "completion", "error_from_event", "stream_chunks"]


@dataclass
class Reply:
    """What the response is about: its id, creation time, the model asked for, the sources."""

    id: str
    created: int
    model: str
    sources: list[Source]
    grounded: bool
    include_usage: bool = False
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)


def error_from_event(event: events.ErrorEvent) -> OpenAIProblem:
    if event.code == "unknown_model":
        return OpenAIProblem(404, event.message, code="model_not_found", param="model")
    status = 400 if event.status == 422 else event.status
    headers = {"Retry-After": "1"} if event.status == 429 else None
    return OpenAIProblem(status, event.message, code=event.code, headers=headers)


def _finish(reason: events.FinishReason) -> FinishReason:
    return "length" if reason == "limit" else reason


def _usage(usage: Usage) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _extension(reply: Reply, text: str, done: events.DoneEvent | None) -> tuple[str, EdgeragExtension]:
    check = check_citations(text, reply.sources)
    extension = EdgeragExtension(
        grounded=reply.grounded,
        sources=[
            SourceOut(
                n=s.n,
                document_id=s.document_id,
                chunk_id=s.chunk_id,
                title=s.title,
                snippet=s.snippet,
                score=s.score,
            )
            for s in reply.sources
        ],
        citations=[
            CitationOut(n=c.n, document_id=c.document_id, chunk_id=c.chunk_id, title=c.title)
            for c in check.citations
        ],
        removed_citations=check.removed,
        provider=done.provider if done else None,
        cost_usd=done.cost_usd if done else None,
    )
    return check.text, extension


async def completion(reply: Reply, stream: AsyncIterator[events.AnyEvent]) -> ChatCompletion:
    """The whole answer as one ``chat.completion`` (raises :class:`OpenAIProblem` on an error event)."""
    done: events.DoneEvent | None = None
    async for event in stream:
        if isinstance(event, events.TokenEvent):
            reply.text.append(event.text)
        elif isinstance(event, events.ToolCallEvent):
            reply.calls.append(event.call)
        elif isinstance(event, events.ErrorEvent):
            raise error_from_event(event)
        elif isinstance(event, events.DoneEvent):
            done = event
    if done is None:  # the client always ends with done or error; this guards a broken invariant
        raise OpenAIProblem(502, "the model service's reply was incomplete", code="upstream")
    text, extension = _extension(reply, "".join(reply.text), done)
    calls = [
        ResponseToolCall(id=c.id, function=ResponseFunctionCall(name=c.name, arguments=c.arguments))
        for c in reply.calls
    ]
    message = ResponseMessage(content=text if text or not calls else None, tool_calls=calls or None)
    return ChatCompletion(
        id=reply.id,
        created=reply.created,
        model=done.model,
        choices=[Choice(message=message, finish_reason=_finish(done.finish_reason))],
        usage=_usage(done.usage),
        edgerag=extension,
    )


def _sse(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


async def stream_chunks(
    reply: Reply, first: events.AnyEvent, rest: AsyncGenerator[events.AnyEvent, None]
) -> AsyncIterator[bytes]:
    """The SSE body, from the first event (already read) and the rest (closed when this ends)."""
    model = reply.model
    usage_field = {"usage": None} if reply.include_usage else {}

    def chunk(delta: Delta, finish: FinishReason | None = None, **extra: object) -> bytes:
        body = ChatCompletionChunk(
            id=reply.id,
            created=reply.created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
        ).model_dump(mode="json", exclude={"usage", "edgerag"})
        body.update(usage_field)
        body.update(extra)
        return _sse(json.dumps(body, separators=(",", ":")))

    async def all_events() -> AsyncIterator[events.AnyEvent]:
        yield first
        async for event in rest:
            yield event

    try:
        yield chunk(Delta(role="assistant", content=""))
        async for event in all_events():
            if isinstance(event, events.TokenEvent):
                reply.text.append(event.text)
                yield chunk(Delta(content=event.text))
            elif isinstance(event, events.ToolCallEvent):
                index = len(reply.calls)
                reply.calls.append(event.call)
                call = ChunkToolCall(
                    index=index,
                    id=event.call.id,
                    type="function",
                    function=ChunkToolCallFunction(name=event.call.name, arguments=event.call.arguments),
                )
                yield chunk(Delta(tool_calls=[call]))
            elif isinstance(event, events.UsageEvent):
                model = event.model
            elif isinstance(event, events.ErrorEvent):
                error = OpenAIErrorBody(
                    message=event.message,
                    type="server_error" if event.status >= 500 else "invalid_request_error",
                    code=event.code,
                )
                yield _sse(json.dumps({"error": error.model_dump()}, separators=(",", ":")))
                return
            elif isinstance(event, events.DoneEvent):
                model = event.model
                _, extension = _extension(reply, "".join(reply.text), event)
                yield chunk(
                    Delta(),
                    _finish(event.finish_reason),
                    edgerag=extension.model_dump(mode="json"),
                )
                if reply.include_usage:
                    usage = ChatCompletionChunk(
                        id=reply.id,
                        created=reply.created,
                        model=model,
                        choices=[],
                        usage=_usage(event.usage),
                    ).model_dump(mode="json", exclude={"edgerag"})
                    yield _sse(json.dumps(usage, separators=(",", ":")))
                yield _sse("[DONE]")
                return
    except Exception as exc:  # a bug while streaming: the client still gets a typed end
        problem = to_openai(exc)
        body = OpenAIErrorBody(message=problem.message, type="server_error", code=problem.code)
        yield _sse(json.dumps({"error": body.model_dump()}, separators=(",", ":")))
    finally:
        await rest.aclose()
