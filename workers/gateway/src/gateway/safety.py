"""The gateway's safety helper: what the chat, answer and OpenAI-compatible routes call.

One :class:`SafetyGuard` per request, loaded with the tenant's policy (:mod:`edgerag.safety`):

    guard = await guard_input(env, principal, end_user=end_user, request_id=request_id, text=question)
    sources = await guard.screen_sources(sources)        # before build_messages
    stream = guard.output_filter()                       # per streamed answer: feed() each token, flush()
    text = await guard.filter_text(answer)               # or for a whole answer
    events = guard.filter_events(dedalus.chat(call))     # or on dedalus's event stream itself

:func:`guard_input` refuses a message that is too long, matches the deny-list, or (policy ``block``)
looks like an injection, by raising :class:`edgerag.safety.ContentBlocked` (422 ``content-blocked``,
naming the rules). :meth:`SafetyGuard.screen_sources` keeps, drops (renumbering the rest from 1) or
refuses flagged sources per the policy, redacts secrets and the tenant's output patterns in every kept
source (title, text and snippet: the model cannot repeat what it never saw) and neutralises its text
(:func:`edgerag.safety.neutralise`: chat-template tokens, role tags and invisible characters, on top of
the grounding core's own fence and marker neutralising). Everything flagged, and every redaction in an
answer, is recorded in ``safety_flags`` with the request id and end user.

Recording is best effort: if the write fails the request goes on (a refusal is still a refusal) and the
failure is logged without the content. A policy that cannot be read fails closed (503).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from edgerag.grounding import Source
from edgerag.llm import events
from edgerag.problems import ServiceUnavailable
from edgerag.safety import (
    Flag,
    OutputFilter,
    Redaction,
    SafetyPolicy,
    SafetyStore,
    filter_output,
    neutralise,
    screen_input,
    screen_sources,
)
from edgerag.store.tenants import Principal

__all__ = ["SafetyGuard", "guard_input"]

log = logging.getLogger("edgerag.gateway.safety")

# The grounding fence (edgerag.grounding.OPEN_FENCE "<<<SOURCES", CLOSE_FENCE ">>>"): its neutralise
# turns these runs into the same look-alikes, so applying both agrees.
_FENCE = ("<<<", ">>>")


class SafetyGuard:
    def __init__(
        self,
        db: Any,
        policy: SafetyPolicy,
        *,
        tenant_id: str,
        end_user: str,
        key_id: str | None,
        request_id: str,
    ) -> None:
        self._store = SafetyStore(db)
        self.policy = policy
        self._tenant_id = tenant_id
        self._end_user = end_user
        self._key_id = key_id
        self.request_id = request_id

    @classmethod
    async def load(cls, env: Any, principal: Principal, *, end_user: str, request_id: str) -> SafetyGuard:
        try:
            policy, _ = await SafetyStore(env.DB).get_policy(principal.tenant_id)
        except Exception as exc:
            log.exception("reading the safety policy of %s failed", principal.tenant_id)
            raise ServiceUnavailable("the tenant's safety policy could not be read; try again") from exc
        return cls(
            env.DB,
            policy,
            tenant_id=principal.tenant_id,
            end_user=end_user,
            key_id=principal.key_id,
            request_id=request_id,
        )

    async def _record(self, flags: Sequence[Flag]) -> None:
        if not flags:
            return
        try:
            await self._store.record(
                self._tenant_id,
                flags,
                request_id=self.request_id,
                end_user=self._end_user,
                key_id=self._key_id,
            )
        except Exception:
            log.exception("recording %d safety flag(s) for %s failed", len(flags), self.request_id)

    async def check_message(self, text: str) -> None:
        """Record what the checks flag in a user message; raise ContentBlocked if the policy refuses it."""
        screening = screen_input(text, self.policy)
        await self._record(screening.flags)
        if screening.blocked is not None:
            raise screening.blocked

    async def screen_sources(self, sources: Sequence[Source]) -> list[Source]:
        """The sources to give the model: flagged ones handled per the policy, renumbered from 1,
        neutralised. Raises ContentBlocked when the policy blocks a flagged source."""
        screening = screen_sources(
            sources, self.policy, text_of=lambda s: f"{s.title}\n{s.text}", chunk_id_of=lambda s: s.chunk_id
        )
        await self._record(screening.flags)
        if screening.blocked is not None:
            raise screening.blocked
        return [
            source.model_copy(
                update={
                    "n": n,
                    "title": self._clean(source.title),
                    "text": self._clean(source.text),
                    "snippet": filter_output(source.snippet, self.policy)[0],
                }
            )
            for n, source in enumerate(screening.kept, start=1)
        ]

    def _clean(self, text: str) -> str:
        # Secrets are redacted before the model sees a source, so it cannot repeat them; the output
        # filter still catches what a model writes by itself.
        return neutralise(filter_output(text, self.policy)[0], delimiters=_FENCE)

    def output_filter(self) -> OutputFilter:
        """A streaming filter for one answer; pass its ``redactions`` to :meth:`record_redactions`."""
        return OutputFilter(self.policy)

    async def filter_text(self, text: str) -> str:
        """``text`` with secrets and the tenant's output patterns redacted (redactions recorded)."""
        filtered, redactions = filter_output(text, self.policy)
        await self.record_redactions(redactions)
        return filtered

    async def filter_events(
        self, stream: AsyncIterator[events.AnyEvent]
    ) -> AsyncGenerator[events.AnyEvent, None]:
        """dedalus's events with token text through the output filter: what is held back is sent as one
        more token just before ``done`` or ``error``; redactions are recorded at ``done``. Closing this
        generator closes ``stream`` (which hangs up on dedalus)."""
        redact = self.output_filter()
        try:
            async for event in stream:
                if isinstance(event, events.TokenEvent):
                    text = redact.feed(event.text)
                    if text:
                        yield event.model_copy(update={"text": text})
                    continue
                if isinstance(event, (events.DoneEvent, events.ErrorEvent)):
                    tail = redact.flush()
                    if tail:
                        yield events.TokenEvent(text=tail)
                    if isinstance(event, events.DoneEvent):
                        await self.record_redactions(redact.redactions)
                yield event
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def record_redactions(self, redactions: Sequence[Redaction]) -> None:
        if not redactions:
            return
        names = sorted({r.name for r in redactions})
        marker = " ".join(f"[redacted:{name}]" for name in names)
        await self._record(
            [Flag("output", "redaction", 1.0, names, "redacted", content=marker, excerpt=marker)]
        )


async def guard_input(
    env: Any, principal: Principal, *, end_user: str, request_id: str, text: str
) -> SafetyGuard:
    """Load the tenant's guard and check the user's message (raises ContentBlocked if refused)."""
    guard = await SafetyGuard.load(env, principal, end_user=end_user, request_id=request_id)
    await guard.check_message(text)
    return guard
