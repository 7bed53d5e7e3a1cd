"""The OpenAI-compatible API: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/embeddings``.

Point any OpenAI client at the gateway (``base_url=<gateway>/v1``, ``api_key=<an API key with the
'chat' scope>``). Shapes and semantics follow OpenAI's API, with these choices:

- **Models** are what the caller's plan may use: dedalus's ``models(plan)`` RPC (the plan's primary
  chat model first, then its override allow-list; the gateway keeps no copy of the model config), plus
  the configured embedding model. ``created`` is 0 (unknown) and ``owned_by`` the provider. A
  completion's ``model`` must be one of the chat ids (else 404 ``model_not_found``); the response names
  the model that actually answered (a fallback may).
- **Grounding** is on by default (:mod:`gateway.openai_api.translate`): the last user message is
  searched in the tenant's documents and the answer cites ``[n]``; the ``edgerag`` extension of the
  response (and of the stream's finishing chunk) lists the sources and the valid citations. Turn it
  off per request with ``"edgerag": {"grounding": false}``.
- **Tools** in the request are the client's own functions: passed to the model through dedalus and
  returned as ``tool_calls`` with ``finish_reason: "tool_calls"``, never executed by the server (the
  client runs them and sends ``tool`` messages back). A plan whose models cannot call tools answers 400.
- **End user**: ``X-End-User`` (as on every route), else the ``user`` field when it fits the same rule;
  a ``user`` that does not fit is a 400. The end user travels to dedalus in the call context.
- **Errors** are OpenAI-shaped (:mod:`gateway.openai_api.errors`); validation failures are 400.

Embeddings run through :class:`edgerag.embedding.Embedder` over the ``AI`` binding with the gateway's
``EMBEDDING_MODEL``, each text cut to the model's input limit (like search); ``usage`` counts the
estimated tokens of what was embedded (:func:`edgerag.tokens.estimate_tokens`).
"""

from __future__ import annotations

import base64
import logging
import struct
from typing import Any

from edgerag.budgets import Admission
from edgerag.contracts.dedalus import CallContext, ChatCall, ModelsReply
from edgerag.embedding import Embedder, EmbeddingError, input_token_limit, truncate_to_tokens
from edgerag.ids import new_id
from edgerag.llm import events
from edgerag.observability import current_request_id
from edgerag.store.tenants import Principal, TenantStore
from edgerag.tokens import estimate_tokens
from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from gateway.budgets import require_budget
from gateway.dedalus import DedalusClient
from gateway.deps import CHATTER, Clock, get_clock, get_env, get_settings
from gateway.enduser import END_USER_HEADER, END_USER_PATTERN, valid_end_user
from gateway.openai_api.errors import (
    ERROR_FORMAT_EXTENSION,
    OPENAI_ERROR_RESPONSES,
    OpenAIProblem,
    OpenAIRoute,
    openai_errors,
)
from gateway.openai_api.models import (
    ChatCompletion,
    ChatCompletionRequest,
    EdgeragOptions,
    Embedding,
    EmbeddingList,
    EmbeddingsRequest,
    EmbeddingUsage,
    ModelList,
    ModelObject,
)
from gateway.openai_api.respond import Reply, completion, error_from_event, stream_chunks
from gateway.openai_api.translate import ground, to_chat_messages
from gateway.safety import guard_input
from gateway.settings import GatewaySettings

__all__ = ["router"]

log = logging.getLogger("edgerag.gateway")

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
_OPENAI = {ERROR_FORMAT_EXTENSION: "openai"}
_SSE = "text/event-stream"


async def _end_user(
    x_end_user: str | None = Header(
        None,
        alias=END_USER_HEADER,
        description="the end user this request acts for (wins over the body's 'user')",
        json_schema_extra={"pattern": END_USER_PATTERN},
    ),
) -> str | None:
    if x_end_user is not None and not valid_end_user(x_end_user):
        raise OpenAIProblem(
            400,
            f"the {END_USER_HEADER} header must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, "
            "starting with a letter or digit",
            code="invalid_end_user",
            param=END_USER_HEADER,
        )
    return x_end_user


def _choose_end_user(header: str | None, user: str | None) -> str:
    if header is not None:
        return header
    if user is None or user == "":
        return ""
    if not valid_end_user(user):
        raise OpenAIProblem(
            400,
            "user must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, starting with a letter or digit "
            f"(the same rule as the {END_USER_HEADER} header)",
            code="invalid_end_user",
            param="user",
        )
    return user


async def _plan_models(env: Any, principal: Principal) -> ModelsReply:
    plan = (await TenantStore(env.DB).get_tenant(principal.tenant_id)).plan
    try:
        return ModelsReply.model_validate(dict(await env.DEDALUS.models(plan)))
    except (ValidationError, TypeError, ValueError) as exc:
        log.error("dedalus answered models(%s) with an invalid reply: %s", plan, exc)
        raise OpenAIProblem(503, "the model service is unavailable", code="unavailable") from exc
    except Exception as exc:  # the binding's own error types are not importable here
        log.error("dedalus could not list the models of plan %s: %r", plan, exc)
        raise OpenAIProblem(503, "the model service is unavailable", code="unavailable") from exc


@router.get(
    "/models",
    summary="List the models this API key's plan may use",
    responses=OPENAI_ERROR_RESPONSES,
    openapi_extra=_OPENAI,
)
async def list_models(
    principal: Principal = Depends(CHATTER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> ModelList:
    reply = await _plan_models(env, principal)
    ordered = sorted(reply.models, key=lambda m: m.id != reply.default)  # the default first
    data = [ModelObject(id=m.id, created=0, owned_by=m.provider) for m in ordered]
    data.append(ModelObject(id=settings.embedding_model, created=0, owned_by="workers-ai"))
    return ModelList(data=data)


@router.post(
    "/chat/completions",
    summary="Create a chat completion (grounded in the tenant's documents by default)",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "the completion; with stream=true, server-sent events: one chat.completion."
            "chunk per data line (the ChatCompletionChunk shape), then data: [DONE]",
            "content": {_SSE: {"schema": {"type": "string", "description": "data: <ChatCompletionChunk>"}}},
        },
        **openai_errors(400, 401, 402, 403, 404, 413, 429, 502, 503),
    },
    openapi_extra=_OPENAI,
)
async def create_chat_completion(
    body: ChatCompletionRequest,
    principal: Principal = Depends(CHATTER),
    # The plan's hourly limit and monthly budget, checked before anything is retrieved or generated.
    admission: Admission = Depends(require_budget),
    header_user: str | None = Depends(_end_user),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
    clock: Clock = Depends(get_clock),
) -> Any:
    end_user = _choose_end_user(header_user, body.user)
    plan_models = await _plan_models(env, principal)
    offered = {m.id: m for m in plan_models.models}
    if body.model not in offered:
        raise OpenAIProblem(
            404,
            f"the model {body.model!r} does not exist or this plan may not use it; "
            f"available: {', '.join(sorted(offered))}",
            code="model_not_found",
            param="model",
        )
    client_tools = [tool.spec() for tool in body.tools or ()] if body.tool_choice != "none" else []
    messages = to_chat_messages(body.messages)
    request_id = current_request_id() or new_id("req", clock=clock)
    # Safety (gateway.safety): the last user message is checked, the sources screened, the answer filtered.
    last_user = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
    guard = await guard_input(env, principal, end_user=end_user, request_id=request_id, text=last_user)
    grounded = await ground(
        env,
        settings,
        principal.tenant_id,
        messages,
        body.edgerag or EdgeragOptions(),
        screen=guard.screen_sources,
    )
    stream = bool(body.stream)
    try:
        call = ChatCall(
            context=CallContext(
                tenant_id=principal.tenant_id,
                plan=plan_models.plan,
                key_id=principal.key_id,
                scopes=sorted(s.value for s in principal.scopes),
                end_user=end_user,
                request_id=request_id,
            ),
            messages=grounded.messages,
            model=body.model,
            client_tools=client_tools,
            max_tokens=body.max_completion_tokens or body.max_tokens,
            temperature=body.temperature,
            stream=stream,
        )
    except ValidationError as exc:  # e.g. an assistant message with neither content nor tool calls
        raise OpenAIProblem(400, f"the messages cannot be sent: {exc.errors()[0]['msg']}") from exc
    reply = Reply(
        id=f"chatcmpl-{request_id}",
        created=int(clock()),
        model=body.model,
        sources=grounded.sources,
        grounded=grounded.grounded,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
    )
    # Closing the filtered generator closes chat() (an async generator), which hangs up on dedalus.
    events_ = guard.filter_events(DedalusClient(env.DEDALUS).chat(call))
    if not stream:
        return await completion(reply, events_)
    first = await anext(events_)
    if isinstance(first, events.ErrorEvent):
        await events_.aclose()
        raise error_from_event(first)
    return StreamingResponse(
        stream_chunks(reply, first, events_),
        media_type=_SSE,
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post(
    "/embeddings",
    summary="Embed texts with the configured embedding model",
    responses=openai_errors(400, 401, 403, 404, 429, 502),
    openapi_extra=_OPENAI,
)
async def create_embeddings(
    body: EmbeddingsRequest,
    principal: Principal = Depends(CHATTER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> EmbeddingList:
    model = settings.embedding_model
    if body.model is not None and body.model != model:
        raise OpenAIProblem(
            404,
            f"the embedding model {body.model!r} is not served here; use {model!r}",
            code="model_not_found",
            param="model",
        )
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    limit = input_token_limit(model)
    embedded = [truncate_to_tokens(text, limit) for text in texts]
    try:
        vectors = await Embedder(env.AI, model).embed(embedded)
    except EmbeddingError as exc:
        log.error("embedding failed: %s", exc)
        raise OpenAIProblem(502, "the embedding model failed to answer; try again", code="upstream") from exc
    if body.dimensions is not None and vectors and body.dimensions != len(vectors[0]):
        raise OpenAIProblem(
            400,
            f"{model} makes {len(vectors[0])}-dimensional vectors; dimensions cannot change that",
            param="dimensions",
        )
    tokens = sum(estimate_tokens(text) for text in embedded)
    return EmbeddingList(
        data=[
            Embedding(index=i, embedding=_base64(v) if body.encoding_format == "base64" else v)
            for i, v in enumerate(vectors)
        ],
        model=model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
