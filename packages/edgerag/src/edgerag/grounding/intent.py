"""Intent detection by rules: is a message a question, a command, or chit-chat?

Rules, in order (the text is lower-cased; words are runs of letters/digits):

1. **chit_chat** when every word is small talk — greetings, thanks, farewells, acknowledgements and
   fillers ("hi", "thanks a lot!", "good morning", "ok cool", "bye") — or the message is one of the
   small-talk phrases ("how are you", "who are you", "what's up", "nice to meet you", ...), alone or
   after a greeting. An empty message (no words) is chit-chat too: there is nothing to look up.
2. **question** when the text ends with ``?`` or its first word (after leading greetings and
   "please") is a wh-word or an auxiliary that opens a yes/no question ("what", "how", "is", "can",
   "does", ...).
3. **command** when that first word is an imperative verb ("summarize", "list", "explain", "compare",
   "tell", "give", "find", ...).
4. otherwise **question**: a bare phrase ("rocket engine thrust") is a search for an answer.

Only chit-chat changes what the caller does (no retrieval); questions and commands are both answered
from the sources. To extend: add words to the sets below and a row to the unit test's table.
"""

from __future__ import annotations

import re
from typing import Literal

from edgerag.grounding.terms import words

__all__ = ["Intent", "detect_intent"]

Intent = Literal["question", "command", "chit_chat"]

_SMALL_TALK = frozenset(
    """hi hello hey hiya howdy yo greetings morning afternoon evening good day thanks thank thx ty you
    so much very lot a cheers bye goodbye later see ya cya ok okay k kk cool great nice awesome perfect
    sure alright right fine got it np welcome lol haha wow yes yeah yep no nope nah there all folks
    everyone team again appreciated appreciate much""".split()
)
_PHRASES = (
    "how are you",
    "how are you doing",
    "how is it going",
    "how's it going",
    "what's up",
    "whats up",
    "who are you",
    "what are you",
    "nice to meet you",
    "good to see you",
    "how do you do",
)
_LEADING = frozenset("hi hello hey please so ok okay and well".split())
_QUESTION_OPENERS = frozenset(
    """what what's whats who who's whom whose which when where where's why how how's is are was were
    am do does did can could should would will shall may might must has have had isn't aren't doesn't
    don't didn't can't couldn't won't wouldn't shouldn't""".split()
)
_IMPERATIVES = frozenset(
    """summarize summarise list explain describe compare show give tell find write draft create generate
    define outline extract translate rewrite search look lookup check calculate compute convert make
    provide name identify recommend suggest help send classify rank sort count analyse analyze
    review walk break elaborate clarify detail quote cite""".split()
)
_SPACES = re.compile(r"\s+")


def _small_talk(text: str, tokens: list[str]) -> bool:
    if all(token in _SMALL_TALK for token in tokens):
        return True
    phrase = _SPACES.sub(" ", re.sub(r"[^\w\s']", " ", text)).strip()
    for lead in ("", "hi ", "hello ", "hey ", "hi there ", "hello there ", "hey there "):
        if phrase.startswith(lead):
            rest = phrase[len(lead) :]
            rest = re.sub(r"\s+(today|there|then|now)$", "", rest)
            if rest in _PHRASES:
                return True
    return False


def detect_intent(text: str) -> Intent:
    """The message's intent by the rules in the module docstring."""
    lowered = text.strip().lower()
    tokens = words(lowered)
    if not tokens or _small_talk(lowered, tokens):
        return "chit_chat"
    if lowered.rstrip().endswith("?"):
        return "question"
    first = next((token for token in tokens if token not in _LEADING), tokens[0])
    if first in _QUESTION_OPENERS:
        return "question"
    if first in _IMPERATIVES:
        return "command"
    return "question"
