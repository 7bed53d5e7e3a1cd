"""Conversation-aware query rewriting: a follow-up becomes a query retrieval can answer alone.

"and what about its cost?" retrieves nothing useful by itself; with the key terms of the turns before
it ("rocket engines") it does. :func:`rewrite_query` returns the message unchanged when it stands on
its own, and otherwise the message followed by the key terms of the previous user turns.

A message is a follow-up when there is a previous user turn and any of:

- it opens like a continuation: "and", "also", "what about", "how about", "but", "then", "so",
  "what else", "more", "why" (alone), "tell me more";
- it has at most :data:`SHORT_WORDS` words ("cost?", "why not");
- it refers back with a pronoun or deictic word ("it", "its", "they", "this", "that one", ...) and has
  at most :data:`FEW_TERMS` key terms of its own.

The added terms come from the most recent user turns first (up to :data:`HISTORY_TURNS` of them), skip
terms the message already has, and are at most :data:`MAX_ADDED_TERMS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgerag.grounding.terms import key_terms, words
from edgerag.llm.types import ChatMessage

__all__ = ["FEW_TERMS", "HISTORY_TURNS", "MAX_ADDED_TERMS", "SHORT_WORDS", "is_follow_up", "rewrite_query"]

SHORT_WORDS = 2
FEW_TERMS = 2
HISTORY_TURNS = 2
MAX_ADDED_TERMS = 8

_OPENERS = (
    ("and",),
    ("also",),
    ("but",),
    ("then",),
    ("so",),
    ("what", "about"),
    ("how", "about"),
    ("what", "else"),
    ("more",),
    ("tell", "me", "more"),
    ("any", "more"),
)
_REFERENCES = frozenset(
    "it its it's itself they them their theirs this that these those he him his she her hers one ones "
    "there same former latter".split()
)


def is_follow_up(message: str) -> bool:
    """Whether ``message`` needs the conversation to be understood (the rules above)."""
    tokens = words(message)
    if not tokens:
        return False
    if any(tuple(tokens[: len(opener)]) == opener for opener in _OPENERS):
        return True
    if len(tokens) <= SHORT_WORDS:
        return True
    return any(token in _REFERENCES for token in tokens) and len(key_terms(message)) <= FEW_TERMS


def rewrite_query(message: str, history: Sequence[ChatMessage]) -> str:
    """``message`` made self-contained with the previous user turns' key terms (or unchanged)."""
    previous = [m.content for m in history if m.role == "user" and (m.content or "").strip()]
    if not previous or not is_follow_up(message):
        return message
    own = set(key_terms(message))
    added: list[str] = []
    for content in reversed(previous[-HISTORY_TURNS:]):
        for term in key_terms(content or ""):
            if term not in own and term not in added:
                added.append(term)
    added = added[:MAX_ADDED_TERMS]
    if not added:
        return message
    return message.rstrip() + " " + " ".join(added)
