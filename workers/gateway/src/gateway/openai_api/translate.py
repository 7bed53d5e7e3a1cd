"""From an OpenAI chat completion request to the messages dedalus is sent, grounded by default.

:func:`to_chat_messages` maps OpenAI messages onto :class:`edgerag.llm.types.ChatMessage` (``developer``
is a ``system`` message; text parts are joined). :func:`ground` then, unless the request turned
grounding off (``"edgerag": {"grounding": false}``):

1. takes the **last user message** as the question (the messages after it — an assistant's tool calls
   and the client's tool results — are kept after it, so a client's tool loop still works);
2. retrieves with it through :func:`edgerag.grounding.retrieve.retrieve_sources` (the hybrid search
   of ``POST /v1/search``, tenant-scoped below this code, keeping only relevant hits, numbered from 1
   with the chunk's full text — the same sources ``/v1/answer`` and chat would use), at most ``top_k``;
3. builds the prompt with :func:`edgerag.grounding.build_messages` — the rules, the sources fenced as
   data, the client's system messages as operator instructions, the earlier turns as history — so the
   answer cites ``[n]`` markers that :func:`edgerag.grounding.check_citations` validates afterwards.

With no relevant hit the sources section says none were found, and the model is told to say that the
sources do not contain the answer rather than invent one. A question with no letter or digit is not
searched. Grounding off: the messages go to the model as the client sent them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edgerag.embedding import Embedder
from edgerag.grounding import Source, build_messages
from edgerag.grounding.retrieve import retrieve_sources
from edgerag.llm.types import ChatMessage, ToolCall
from edgerag.retrieval.hybrid import SearchRequest

from gateway.openai_api.models import (
    AssistantMessage,
    Content,
    EdgeragOptions,
    RequestMessage,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from gateway.settings import GatewaySettings

__all__ = ["Grounded", "ground", "to_chat_messages"]

_MAX_QUERY_CHARS = 2000  # as POST /v1/search


@dataclass(frozen=True)
class Grounded:
    messages: list[ChatMessage]
    sources: list[Source]
    grounded: bool  # retrieval ran (it may still have found nothing)


def _text(content: Content | None) -> str | None:
    if content is None or isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def to_chat_messages(messages: list[RequestMessage]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append(ChatMessage(role="system", content=_text(message.content)))
        elif isinstance(message, UserMessage):
            out.append(ChatMessage(role="user", content=_text(message.content)))
        elif isinstance(message, AssistantMessage):
            calls = [
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                for c in message.tool_calls or ()
            ]
            out.append(ChatMessage(role="assistant", content=_text(message.content), tool_calls=calls))
        elif isinstance(message, ToolMessage):
            out.append(
                ChatMessage(role="tool", content=_text(message.content), tool_call_id=message.tool_call_id)
            )
    return out


async def _sources(
    env: Any, settings: GatewaySettings, tenant_id: str, query: str, options: EdgeragOptions
) -> list[Source]:
    request = SearchRequest(
        tenant_id=tenant_id,
        query=query[:_MAX_QUERY_CHARS],
        top_k=options.top_k * 2,  # room for the hits that are not relevant
        document_ids=tuple(options.document_ids or ()),
        rerank_top_n=settings.rerank_top_n,
    )
    embedder = Embedder(env.AI, settings.embedding_model, truncate=True)
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}
    sources = await retrieve_sources(
        env.DB, env.VECTORS, request, embedder, weights, settings.rrf_k, reranker=settings.reranker(env.AI)
    )
    return sources[: options.top_k]  # numbered from 1 in rank order, so a prefix stays valid


async def ground(
    env: Any,
    settings: GatewaySettings,
    tenant_id: str,
    messages: list[ChatMessage],
    options: EdgeragOptions,
    screen: Callable[[list[Source]], Awaitable[list[Source]]] | None = None,
) -> Grounded:
    """The messages to send, grounded in the tenant's documents unless ``options`` turn it off.

    ``screen`` (the request's :meth:`gateway.safety.SafetyGuard.screen_sources`) sees the sources
    before they go into the prompt."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if not options.grounding or last_user is None:
        return Grounded(messages, [], False)
    if options.document_ids is not None and not options.document_ids:
        sources: list[Source] = []  # an explicit empty filter selects no documents
    else:
        question = messages[last_user].content or ""
        searchable = any(ch.isalnum() for ch in question)
        sources = await _sources(env, settings, tenant_id, question, options) if searchable else []
    if screen is not None:
        sources = await screen(sources)
    instructions = "\n\n".join(m.content or "" for m in messages if m.role == "system").strip()
    prompt = build_messages(
        messages[last_user].content or "",
        sources,
        history=[m for m in messages[:last_user] if m.role != "system"],
        instructions=instructions or None,
    )
    return Grounded([*prompt, *messages[last_user + 1 :]], sources, True)
