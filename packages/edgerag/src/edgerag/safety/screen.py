"""Decisions: what a tenant's policy does with a user message and with retrieved sources.

Pure functions over the checks (:func:`~edgerag.safety.denylist.check_input`,
:func:`~edgerag.safety.injection.scan_injection`) and the policy, returning the :class:`Flag` records
to store and, when the policy refuses the request, a :class:`ContentBlocked` problem to raise. The
gateway's helper (``gateway.safety.SafetyGuard``) loads the policy, stores the flags, then raises; this
module does no I/O, so the rules are tested with tables.

* A user message that is too long or matches a deny rule is refused (kind ``length``/``denylist``).
* A user message the detector flags is recorded; with ``on_flagged_input = block`` it is refused.
* Each source is scanned (title and text); a flagged one is recorded and, per ``on_flagged_source``,
  kept (``allow``), left out (``drop``) or makes the request fail (``block``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from edgerag.problems import Problem
from edgerag.safety.denylist import check_input
from edgerag.safety.injection import scan_injection
from edgerag.safety.policy import SafetyPolicy
from edgerag.safety.store import Flag

__all__ = ["ContentBlocked", "InputScreening", "SourceScreening", "screen_input", "screen_sources"]

T = TypeVar("T")


class ContentBlocked(Problem):
    """422: the tenant's safety policy refused the request. ``reasons`` names the rules (never the
    matched text); ``location`` is ``user_message`` or ``source``."""

    status, title, slug = 422, "Content Blocked", "content-blocked"

    def __init__(self, detail: str, *, reasons: Sequence[str], location: str, **extra: Any) -> None:
        super().__init__(detail, reasons=list(reasons), location=location, **extra)
        self.reasons = list(reasons)
        self.location = location


@dataclass(frozen=True)
class InputScreening:
    flags: list[Flag] = field(default_factory=list)
    blocked: ContentBlocked | None = None


@dataclass(frozen=True)
class SourceScreening(Generic[T]):
    kept: list[T]
    flags: list[Flag] = field(default_factory=list)
    blocked: ContentBlocked | None = None


def screen_input(text: str, policy: SafetyPolicy) -> InputScreening:
    verdict = check_input(text, policy)
    if verdict.too_long:
        too_long = ContentBlocked(
            f"the message has {verdict.length} characters; "
            f"this tenant accepts at most {policy.max_input_chars}",
            reasons=verdict.reasons,
            location="user_message",
        )
        flag = Flag(
            "user_message", "length", 1.0, verdict.reasons, "blocked", content=text, excerpt=text[:200]
        )
        return InputScreening([flag], too_long)
    if verdict.denied:
        denied = ContentBlocked(
            "the message matches this tenant's deny-list (" + ", ".join(verdict.denied) + ")",
            reasons=verdict.reasons,
            location="user_message",
        )
        return InputScreening(
            [Flag("user_message", "denylist", 1.0, verdict.reasons, "blocked", content=text)], denied
        )
    score = scan_injection(text)
    if not score.flagged(policy.injection_threshold):
        return InputScreening()
    block = policy.on_flagged_input == "block"
    flag = Flag(
        "user_message",
        "injection",
        score.score,
        score.reasons,
        "blocked" if block else "allowed",
        content=text,
        excerpt=score.excerpt,
    )
    problem: ContentBlocked | None = (
        ContentBlocked(
            "the message looks like a prompt-injection attempt (" + ", ".join(score.reasons) + ")",
            reasons=score.reasons,
            location="user_message",
            score=score.score,
        )
        if block
        else None
    )
    return InputScreening([flag], problem)


def screen_sources(
    sources: Sequence[T],
    policy: SafetyPolicy,
    *,
    text_of: Callable[[T], str],
    chunk_id_of: Callable[[T], str],
) -> SourceScreening[T]:
    """Scan each source; keep, drop or block flagged ones per ``policy.on_flagged_source``."""
    kept: list[T] = []
    flags: list[Flag] = []
    blocked: ContentBlocked | None = None
    action = {"allow": "allowed", "drop": "dropped", "block": "blocked"}[policy.on_flagged_source]
    for source in sources:
        text = text_of(source)
        score = scan_injection(text)
        if not score.flagged(policy.injection_threshold):
            kept.append(source)
            continue
        flags.append(
            Flag(
                "source",
                "injection",
                score.score,
                score.reasons,
                action,  # type: ignore[arg-type]
                content=text,
                excerpt=score.excerpt,
                chunk_id=chunk_id_of(source),
            )
        )
        if action == "allowed":
            kept.append(source)
        elif action == "blocked" and blocked is None:
            blocked = ContentBlocked(
                "a retrieved source looks like a prompt-injection attempt (" + ", ".join(score.reasons) + ")",
                reasons=score.reasons,
                location="source",
                chunk_id=chunk_id_of(source),
            )
    return SourceScreening(kept, flags, blocked)
