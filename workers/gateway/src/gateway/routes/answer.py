"""``POST /v1/answer``: one grounded answer to a question over the caller's documents.

The path is chosen by :func:`edgerag.grounding.detect_intent`:

- **chit-chat** ("hi", "thanks!"): a short fixed reply, no retrieval, no model call, confidence 0;
- **question / command**: hybrid search over the tenant's documents
  (:func:`edgerag.grounding.retrieve_sources`; only hits the keyword retriever matched are evidence),
  then

  - **nothing relevant**: the answer says the documents do not contain it (:data:`NOT_FOUND`) and
    no model is called — a model given no sources can only refuse or invent, and refusing costs
    nothing here; confidence 0;
  - otherwise the grounded prompt (:func:`edgerag.grounding.build_messages`: rules, the sources
    fenced as numbered data, the end user's context) goes to dedalus (``stream=False``, no tools)
    with the call context from the authenticated key; the reply's markers are checked
    (:func:`edgerag.grounding.check_citations`: every citation left names a source the model was
    given, the rest are removed and counted in ``removed_citations``), and confidence and three
    follow-up questions are computed from retrieval and citations, never asked of the model.

Answer cache (:mod:`edgerag.cache`, tenant-scoped KV): a model's answer is cached under the tenant's
cache generation (which every document change bumps) and everything the prompt depends on — the
question, ``top_k``, the filter, the requested model, the plan, the end user's context and the
tenant's safety policy — so an identical question over unchanged documents is answered without a
model call (``cached: true``, usage 0). ``"cache": false`` in the body skips it. The query embedding
is cached too. A cache failure is a miss, never an error; hits and misses are counted for
``GET /v1/usage``.

Safety (:mod:`gateway.safety`): every question, chit-chat included, is checked first (length,
the tenant's deny-list, the injection detector: a refusal is a 422 ``content-blocked`` problem);
retrieved sources are screened (flagged ones kept, dropped or refused per the tenant's policy) and
neutralised before the prompt is built, and the model's answer has secrets and the tenant's output
patterns redacted before its citations are checked. Flags are recorded with the request id.

A dedalus ``error`` event answers with its status as a problem (:func:`gateway.chat.problem_for`:
the model not allowed 400, unknown 422, prompt too long 413, provider failures 502/503/504). The
route needs the ``chat`` scope and the tenant's budget (:func:`gateway.budgets.require_budget`:
402/429 before any model is called). Nothing is stored by this route; dedalus records the model
call's usage row.
"""

from __future__ import annotations

from typing import Any, Literal

from edgerag.budgets import Admission
from edgerag.cache import ANSWER_TTL_S, CachedEmbedder, TenantCache, read_generation
from edgerag.contracts.dedalus import CallContext, ChatCall
from edgerag.counters import UsageCounters
from edgerag.embedding import Embedder
from edgerag.grounding import (
    Source,
    build_messages,
    check_citations,
    confidence,
    detect_intent,
    follow_ups,
    retrieve_sources,
)
from edgerag.ids import new_id
from edgerag.llm import events
from edgerag.llm.types import Usage
from edgerag.observability import current_request_id
from edgerag.retrieval.hybrid import SearchRequest
from edgerag.store.tenants import Principal
from edgerag.store.user_context import UserContextStore
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.budgets import get_counters, require_budget
from gateway.chat import problem_for
from gateway.dedalus import DedalusClient
from gateway.deps import CHATTER, Clock, get_clock, get_env, get_settings
from gateway.enduser import get_end_user
from gateway.openapi import problems
from gateway.safety import guard_input
from gateway.settings import GatewaySettings

__all__ = ["CHIT_CHAT_REPLY", "DEFAULT_TOP_K", "NOT_FOUND", "router"]

router = APIRouter(prefix="/v1", tags=["answers"])

MAX_QUESTION_CHARS = 2000
DEFAULT_TOP_K = 5
NOT_FOUND = "The documents do not contain information that answers this question."
CHIT_CHAT_REPLY = (
    "Hello! Ask me a question about your documents and I will answer from them, citing my sources."
)
_THANKS = "You're welcome! Ask me anything else about your documents."
_STARTERS = [
    "What topics do my documents cover?",
    "Can you summarize the most recent document?",
    "Which document should I read first?",
]
_SEARCHABLE = r"[^\W_]"  # a letter or digit in any script, as /v1/search requires
_MODEL_ID = r"^[A-Za-z0-9@][A-Za-z0-9@/_.:-]*$"


class AnswerFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_ids: list[str] | None = Field(
        None,
        max_length=50,
        description="Answer only from these documents. Omitted or null: all documents; [] selects none.",
    )


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        max_length=MAX_QUESTION_CHARS,
        pattern=_SEARCHABLE,
        description="The question or request (up to 2,000 characters, with a letter or digit)",
    )
    top_k: int | None = Field(
        None, ge=1, le=20, description=f"Sources to retrieve at most (default {DEFAULT_TOP_K})"
    )
    filters: AnswerFilters | None = None
    model: str | None = Field(
        None,
        max_length=128,
        pattern=_MODEL_ID,
        description="A model id from the tenant's override allow-list (default: the plan's chat model)",
    )
    cache: bool = Field(
        default=True,
        description="false: skip the answer cache and ask the model again (then re-cached)",
    )

    @field_validator("question")
    @classmethod
    def _askable(cls, value: str) -> str:
        stripped = value.strip()
        if not any(ch.isalnum() for ch in stripped):
            raise ValueError("the question has no letters or digits")
        return stripped


class AnswerSource(BaseModel):
    n: int = Field(description="the source's number; the answer cites it as [n]")
    document_id: str
    title: str
    chunk_id: str
    snippet: str = Field(description="a window of the chunk around the first question term it contains")
    score: float = Field(description="fused retrieval score (weighted reciprocal rank fusion)")
    retrievers: dict[str, int] = Field(description="rank (from 1) of the chunk in each retriever")


class AnswerCitation(BaseModel):
    n: int = Field(description="the marker's number, one of the sources' n")
    document_id: str
    chunk_id: str
    title: str


class AnswerUsage(BaseModel):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0, description="the model call's cost by the tenant's price list")
    estimated: bool = Field(description="true when the provider reported no counts (an upper bound)")


class AnswerResponse(BaseModel):
    answer: str = Field(description="the answer, with only citation markers that name a given source")
    citations: list[AnswerCitation] = Field(description="the sources the answer cites, in order of first use")
    sources: list[AnswerSource] = Field(description="the sources the model was given ([] = none)")
    confidence: float = Field(
        ge=0,
        le=1,
        description="0.5 x cited sentence share + 0.3 x share of cited sources both retrievers found + "
        "0.2 / best rank of a cited source; 0 without a cited source",
    )
    follow_ups: list[str] = Field(description="three follow-up questions derived from the sources")
    intent: Literal["question", "command", "chit_chat"]
    usage: AnswerUsage
    model: str | None = Field(description="the model that answered; null when no model was called")
    removed_citations: int = Field(ge=0, description="citation markers removed: they named no given source")
    cached: bool = Field(
        default=False, description="true when this answer came from the tenant's answer cache (no model call)"
    )


def _usage(usage: Usage | None = None, cost_usd: float = 0.0) -> AnswerUsage:
    usage = usage or Usage()
    return AnswerUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cost_usd=round(cost_usd, 8),
        estimated=usage.estimated,
    )


def _source_view(source: Source) -> AnswerSource:
    return AnswerSource(
        n=source.n,
        document_id=source.document_id,
        title=source.title,
        chunk_id=source.chunk_id,
        snippet=source.snippet,
        score=source.score,
        retrievers=source.retrievers,
    )


def _without_model(question: str, intent: Literal["question", "command", "chit_chat"]) -> AnswerResponse:
    if intent == "chit_chat":
        thanks = any(word in question.lower() for word in ("thank", "thx", "cheers"))
        reply, suggestions = (_THANKS if thanks else CHIT_CHAT_REPLY), list(_STARTERS)
    else:
        reply, suggestions = NOT_FOUND, follow_ups(question, [], NOT_FOUND)
    return AnswerResponse(
        answer=reply,
        citations=[],
        sources=[],
        confidence=0.0,
        follow_ups=suggestions,
        intent=intent,
        usage=_usage(),
        model=None,
        removed_citations=0,
    )


@router.post("/answer", responses=problems(400, 401, 402, 403, 413, 422, 429, 502, 503, 504))
async def answer(
    body: AnswerBody,
    principal: Principal = Depends(CHATTER),
    admission: Admission = Depends(require_budget),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
    clock: Clock = Depends(get_clock),
    counters: UsageCounters = Depends(get_counters),
) -> AnswerResponse:
    request_id = current_request_id() or new_id("req", clock=clock)
    guard = await guard_input(env, principal, end_user=end_user, request_id=request_id, text=body.question)
    intent = detect_intent(body.question)
    document_ids = body.filters.document_ids if body.filters else None
    if intent == "chit_chat" or (document_ids is not None and not document_ids):
        return _without_model(body.question, intent)
    request = SearchRequest(
        tenant_id=principal.tenant_id,
        query=body.question,
        top_k=body.top_k or DEFAULT_TOP_K,
        document_ids=tuple(document_ids or ()),
        rerank_top_n=settings.rerank_top_n,
    )
    context = None
    if end_user:
        record = await UserContextStore(env.DB).get(principal.tenant_id, end_user)
        context = record.context.model_dump(mode="json") if record else None
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}
    cache = TenantCache(env.CACHE, principal.tenant_id, counters)
    generation = await read_generation(env.DB, principal.tenant_id)
    key = {
        "question": body.question,
        "top_k": request.top_k,
        "document_ids": sorted(set(request.document_ids)),
        "model": body.model,
        "plan": admission.plan,
        "context": context,
        "embedding_model": settings.embedding_model,
        "weights": weights,
        "rrf_k": settings.rrf_k,
        "rerank": [settings.rerank_top_n, settings.rerank_model] if settings.rerank_top_n else None,
        "safety": guard.policy.model_dump(mode="json"),  # a policy change must not serve old answers
    }
    if generation is not None and body.cache:
        hit = _from_cache(await cache.get_json("answer", generation, key))
        if hit is not None:
            return hit

    embedder = CachedEmbedder(Embedder(env.AI, settings.embedding_model, truncate=True), cache)
    sources = await guard.screen_sources(
        await retrieve_sources(
            env.DB,
            env.VECTORS,
            request,
            embedder,
            weights,
            settings.rrf_k,
            reranker=settings.reranker(env.AI),
        )
    )
    if not sources:
        return _without_model(body.question, intent)
    call = ChatCall(
        context=CallContext(
            tenant_id=principal.tenant_id,
            plan=admission.plan,
            key_id=principal.key_id,
            scopes=sorted(scope.value for scope in principal.scopes),
            end_user=end_user or None,
            request_id=request_id,
        ),
        messages=build_messages(body.question, sources, user_context=context),
        model=body.model,
        stream=False,
    )
    text, done = await _ask_model(DedalusClient(env.DEDALUS), call)
    check = check_citations(await guard.filter_text(text), sources)
    reply = AnswerResponse(
        answer=check.text,
        citations=[AnswerCitation(**c.model_dump()) for c in check.citations],
        sources=[_source_view(s) for s in sources],
        confidence=confidence(sources, check),
        follow_ups=follow_ups(body.question, sources, check.text),
        intent=intent,
        usage=_usage(done.usage, done.cost_usd),
        model=done.model,
        removed_citations=check.removed,
    )
    if generation is not None:
        await cache.put_json("answer", generation, key, reply.model_dump(mode="json"), ttl=ANSWER_TTL_S)
    return reply


async def _ask_model(client: DedalusClient, call: ChatCall) -> tuple[str, events.DoneEvent]:
    """The model's whole reply and its ``done`` event; an ``error`` event raises its problem."""
    text: list[str] = []
    async for event in client.chat(call):
        if isinstance(event, events.TokenEvent):
            text.append(event.text)
        elif isinstance(event, events.ErrorEvent):
            raise problem_for(event)
        elif isinstance(event, events.DoneEvent):
            return "".join(text).strip(), event
    # DedalusClient always ends with done or error; this only guards a broken contract.
    raise problem_for(
        events.ErrorEvent(code="internal", message="the model service said nothing", status=502)
    )


def _from_cache(value: Any) -> AnswerResponse | None:
    """The cached answer as this request's reply (no model call: usage 0), or None for a miss."""
    if not isinstance(value, dict):
        return None
    try:
        cached = AnswerResponse.model_validate(value)
    except ValidationError:
        return None
    return cached.model_copy(update={"cached": True, "usage": _usage()})
