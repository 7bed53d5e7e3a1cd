"""Chat sessions: create, list, get, delete; a session's messages; sending a message.

Everything here needs the ``chat`` scope and is scoped to (tenant, end user): the end user is the
``X-End-User`` header (:mod:`gateway.enduser`), and another tenant's or another end user's session
answers 404 like one that does not exist. Deleting a session deletes its messages.

Sending a message (``POST /v1/chat/sessions/{id}/messages``) is :mod:`gateway.chat`. With
``Accept: text/event-stream`` (or ``"stream": true``) the reply is a stream of server-sent events:

- ``sources`` — first: ``{session_id, user_message_id, message_id, sources: [{n, chunk_id,
  document_id, title, snippet, score}]}``, the passages given to the model, numbered as it cites them;
- ``token`` — ``{text}`` as the model writes (raw: citation markers are validated at the end);
- ``tool_call`` / ``tool_result`` — agent mode only: ``{step, call: {id, name, arguments}}`` and
  ``{step, tool_call_id, name, ok, content, latency_ms}``;
- ``done`` — the stored assistant message (the :class:`~gateway.chat_models.Message` of the JSON
  reply: cleaned text, citations, confidence, tool calls, usage);
- ``error`` — instead of ``done``: a problem-details object (``type``, ``title``, ``status``,
  ``detail``, ``code``; ``stored`` says whether the turn was kept, ``message_id`` names the failed
  answer);
- ``: keep-alive`` comments when nothing happened for ``CHAT_HEARTBEAT_S`` seconds.

Without it the reply is that assistant message as JSON (200), or the error as a problem with the
model service's status. Either way the user message is stored before the model is called. Pending
answers a stopped worker left behind are recovered as ``interrupted`` whenever the session is read.
"""

from __future__ import annotations

import re
from typing import Any

from edgerag.budgets import Admission
from edgerag.settings import load_settings
from edgerag.store.chat import ChatStore, SessionRecord
from edgerag.store.tenants import Principal, TenantStore
from fastapi import APIRouter, Depends, Query, Request, Response

from gateway.budgets import require_budget
from gateway.chat import ChatSettings, ChatTurn, GatewayTimeout, TurnInput
from gateway.chat_models import (
    SESSION_ID,
    Message,
    MessageList,
    NewSession,
    SendMessage,
    Session,
    SessionList,
)
from gateway.deps import CHATTER, Clock, get_clock, get_env, get_settings
from gateway.enduser import get_end_user
from gateway.openapi import PROBLEM_JSON, ProblemDetails, problems
from gateway.paging import CURSOR_QUERY, decode_cursor, encode_cursor, id_path
from gateway.settings import GatewaySettings
from gateway.sse import EventStreamResponse, OutEvent

_SESSION_ID_PARAM = id_path(
    "session_id", SESSION_ID, "a chat session id (ses_ + 26 characters); any other path is a 404"
)

router = APIRouter(prefix="/v1/chat/sessions", tags=["chat"])

_SESSION_CURSOR = re.compile(rf"s\|(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z)\|({SESSION_ID})")
_MESSAGE_CURSOR = re.compile(r"m\|([1-9]\d{0,9})")
_504: dict[int | str, dict[str, Any]] = {
    504: {
        "description": "Gateway Timeout: the model service gave up within its deadline",
        "model": ProblemDetails,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
}


def _store(env: Any, clock: Clock) -> ChatStore:
    return ChatStore(env.DB, clock=clock)


async def _session(
    env: Any, clock: Clock, principal: Principal, end_user: str, session_id: str
) -> SessionRecord:
    """The caller's session (404 otherwise), after recovering answers a stopped worker left pending."""
    store = _store(env, clock)
    session = await store.get_session(principal.tenant_id, end_user, session_id)
    chat = load_settings(ChatSettings, env)
    if await store.recover_pending(principal.tenant_id, session_id, older_than_s=chat.pending_timeout_s):
        session = await store.get_session(principal.tenant_id, end_user, session_id)
    return session


@router.post("", status_code=201, responses=problems(401, 403, 422, 429))
async def create_session(
    body: NewSession,
    principal: Principal = Depends(CHATTER),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> Session:
    """Start a conversation for the end user named by X-End-User (or the tenant's default user)."""
    record = await _store(env, clock).create_session(
        principal.tenant_id, end_user, title=body.title, document_ids=body.document_ids
    )
    return Session.of(record)


@router.get("", responses=problems(400, 401, 403, 422, 429))
async def list_sessions(
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = CURSOR_QUERY,
    principal: Principal = Depends(CHATTER),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> SessionList:
    """The end user's sessions, newest first, with their message counts."""
    after = None
    if cursor:
        match = decode_cursor(cursor, _SESSION_CURSOR)
        after = (match.group(1), match.group(2))
    page = await _store(env, clock).list_sessions(principal.tenant_id, end_user, limit=limit + 1, after=after)
    more = len(page) > limit
    page = page[:limit]
    next_cursor = encode_cursor(f"s|{page[-1].created_at}|{page[-1].id}") if more and page else None
    return SessionList(sessions=[Session.of(s) for s in page], next_cursor=next_cursor)


@router.get("/{session_id:session_id}", responses=problems(401, 403, 404, 422, 429))
async def get_session(
    session_id: str = _SESSION_ID_PARAM,
    principal: Principal = Depends(CHATTER),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> Session:
    return Session.of(await _session(env, clock, principal, end_user, session_id))


@router.delete("/{session_id:session_id}", status_code=204, responses=problems(401, 403, 404, 422, 429))
async def delete_session(
    session_id: str = _SESSION_ID_PARAM,
    principal: Principal = Depends(CHATTER),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> Response:
    """Delete the session and all its messages."""
    store = _store(env, clock)
    await store.get_session(principal.tenant_id, end_user, session_id)  # 404 for others' sessions
    await store.delete_session(principal.tenant_id, end_user, session_id)
    return Response(status_code=204)


@router.get("/{session_id:session_id}/messages", responses=problems(400, 401, 403, 404, 422, 429))
async def list_messages(
    session_id: str = _SESSION_ID_PARAM,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = CURSOR_QUERY,
    principal: Principal = Depends(CHATTER),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> MessageList:
    """The session's messages, oldest first."""
    after = int(decode_cursor(cursor, _MESSAGE_CURSOR).group(1)) if cursor else 0
    await _session(env, clock, principal, end_user, session_id)
    page = await _store(env, clock).list_messages(
        principal.tenant_id, session_id, limit=limit + 1, after_seq=after
    )
    more = len(page) > limit
    page = page[:limit]
    next_cursor = encode_cursor(f"m|{page[-1].seq}") if more and page else None
    return MessageList(messages=[Message.of(m) for m in page], next_cursor=next_cursor)


# One server-sent event as a client's SSE parser yields it (the event name and its data line, JSON
# text), which is also how schemathesis validates a text/event-stream response event by event.
_SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "description": "sources, token, tool_call, tool_result, then done or error",
        },
        "data": {"type": "string", "description": "the event's JSON payload"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}
_SSE_RESPONSE = {
    "description": "With Accept: text/event-stream (or stream: true): the answer as server-sent events "
    "(sources, token..., tool_call/tool_result, then done or error; see the chat guide)",
    "content": {"text/event-stream": {"schema": _SSE_EVENT_SCHEMA}},
}


def _wants_stream(body: SendMessage, request: Request) -> bool:
    if body.stream is not None:
        return body.stream
    return "text/event-stream" in request.headers.get("accept", "").lower()


@router.post(
    "/{session_id:session_id}/messages",
    responses={
        200: {
            "model": Message,
            "description": "The assistant's answer, stored (JSON), or the event stream",
            "content": {"text/event-stream": {"schema": _SSE_EVENT_SCHEMA}},
        },
        **problems(400, 401, 402, 403, 404, 413, 422, 429, 502, 503),
        **_504,
    },
)
async def send_message(
    body: SendMessage,
    request: Request,
    session_id: str = _SESSION_ID_PARAM,
    principal: Principal = Depends(CHATTER),
    # The plan's hourly limit (429) and monthly budget (402), before anything is stored or asked.
    admission: Admission = Depends(require_budget),
    end_user: str = Depends(get_end_user),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
    clock: Clock = Depends(get_clock),
) -> Any:
    """Ask a question in the session: retrieval over the tenant's documents, a grounded answer with
    validated citations, stored with its sources, citations, confidence, tool calls and usage."""
    session = await _session(env, clock, principal, end_user, session_id)
    tenant = await TenantStore(env.DB, clock=clock).get_tenant(principal.tenant_id)
    chat = load_settings(ChatSettings, env)
    stream = _wants_stream(body, request)
    turn = ChatTurn(
        env,
        settings,
        chat,
        TurnInput(
            principal=principal,
            plan=tenant.plan,
            end_user=end_user,
            session=session,
            content=body.content,
            tools=body.tools,
            model=body.model,
            stream=stream,
        ),
        clock=clock,
    )
    await turn.prepare()
    if stream:
        return EventStreamResponse(
            turn.events(),
            heartbeat_s=chat.heartbeat_s,
            on_failure=lambda: OutEvent(
                "error",
                '{"type":"https://edgerag.dev/problems/upstream","title":"Bad Gateway","status":502,'
                '"detail":"the answer failed unexpectedly"}',
            ),
        )
    last: OutEvent | None = None
    async for event in turn.events():
        last = event
    if turn.problem is not None or last is None or last.event != "done":
        raise turn.problem or GatewayTimeout("the answer did not finish")
    return Response(last.data, media_type="application/json")
