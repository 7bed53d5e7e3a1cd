"""A deterministic prompt-injection detector: weighted patterns, combined into a score in [0, 1].

:func:`scan_injection` is applied to user messages and to every retrieved source before it reaches a
prompt. It is a screen, not a proof: it catches the common, known shapes of attack cheaply and
predictably (same text, same score), so tenants can choose what happens to flagged content
(:mod:`edgerag.safety.policy`) and the recorded flags can be reviewed.

Method (documented so a score can be explained):

1. The text is folded (:func:`edgerag.safety.normalize.fold`: NFKC, invisible characters dropped,
   case-folded, whitespace collapsed); line-based rules see each line folded the same way.
2. Each rule in :data:`RULES` that matches adds its name to ``reasons``; a rule counts once however often
   it matches.
3. Encoded payloads: every base64-looking run of 40+ characters that decodes to readable UTF-8 text,
   and any text hidden in Unicode tag characters, is scanned the same way (one level deep); if that
   scores at least 0.3 the rule ``encoded_payload`` (or ``smuggled_text``) fires with weight
   ``max(0.6, inner score)``.
4. ``score = 1 - prod(1 - weight)`` over the rules that fired (a "noisy OR": independent signals
   reinforce each other, no single weak one reaches the default threshold of 0.5, and the score never
   exceeds 1), rounded to 3 decimals.

Weights: a rule that is an attack on its own (overriding instructions, exfiltrating the system prompt,
an image URL carrying a query string, chat-template tokens) weighs 0.6-0.8 and flags alone; a rule that
is only suspicious (``act as``, a ``System:`` label, a shell command) weighs 0.3-0.45 and flags only
together with another. To add a rule: append a :class:`Rule` with a name, a weight, the view it reads
and a pattern whose quantifiers are bounded; add attempts and benign look-alikes to
tests/unit/test_injection_suite.py and check the summary it prints.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from edgerag.safety.normalize import HIDDEN_CHARACTERS, fold, hidden_characters, tag_payload

__all__ = ["RULES", "InjectionScore", "Rule", "scan_injection"]

DEFAULT_THRESHOLD: Final = 0.5
MAX_EXCERPT_CHARS: Final = 160
_INNER_MIN_SCORE: Final = 0.3
_MAX_BLOBS: Final = 20


@dataclass(frozen=True)
class Rule:
    name: str
    weight: float
    view: Literal["flat", "lines", "raw"]  # folded text / folded lines (^ and $ per line) / NFKC text
    pattern: re.Pattern[str]


def _r(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_VERBS_OVERRIDE = r"(?:ignore|disregard|forget|override|overrule|bypass|skip|neglect|do not follow|don't follow|stop following|do not obey|don't obey)"  # noqa: E501
_SCOPE = r"(?:previous|prior|above|earlier|preceding|foregoing|all|any|your|system|original|initial|other|developer)"  # noqa: E501
_ORDERS = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|programming|restrictions|constraints|context|messages|orders|policies)"  # noqa: E501
_MODEL = r"(?:ai|assistant|llm|language model|chatbot|chat bot|the model|gpt|chatgpt|claude|bot|copilot)"
_SECRET_PROMPT = (
    r"(?:your (?:(?:system|initial|original|hidden|secret|full|first|developer|internal|exact) )?"
    r"(?:prompt|instructions|system message|rules|guidelines|configuration)"
    r"|the (?:system|initial|original|hidden|secret|developer) (?:prompt|instructions|message))"
)

RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "override_instructions",
        0.8,
        "flat",
        _r(rf"\b{_VERBS_OVERRIDE}\b[^.!?]{{0,30}}?\b{_SCOPE}\b[^.!?]{{0,24}}?\b{_ORDERS}\b"),
    ),
    Rule(
        "new_instructions",
        0.45,
        "flat",
        _r(
            r"\b(?:new|updated|real|actual|revised|true) (?:system )?(?:instructions?|directives?|rules|task)"
            r" ?:"
        ),
    ),
    Rule(
        "behaviour_change",
        0.35,
        "flat",
        _r(
            r"\bfrom now on,? (?:you|your|the assistant)\b|\binstead,? (?:you (?:must|should|will)|"
            r"respond|reply|answer|say)\b"
        ),
    ),
    Rule(
        "persona_switch",
        0.6,
        "flat",
        _r(
            r"\byou are (?:now|no longer)\b|\byou(?: are|'re) (?:an? )?(?:unrestricted|unfiltered|"
            r"uncensored|jailbroken|evil|unbound)\b|\byour new (?:name|persona|role|identity) is\b"
        ),
    ),
    Rule(
        "jailbreak_terms",
        0.6,
        "flat",
        _r(
            r"\b(?:dan|dude|stan|aim) mode\b|\bdo anything now\b|\bjailbr(?:eak|oken)\b"
            r"|\b(?:developer|god) mode\b"
        ),
    ),
    Rule(
        "role_play",
        0.35,
        "flat",
        _r(
            r"\b(?:act|behave|respond|speak|answer) as (?:if you (?:were|are)|an?|the|my)\b"
            r"|\bpretend (?:to be|"
            r"you are|you're|that you)\b|\brole-?play (?:as|that)\b|\bimpersonate\b|\bstay in character\b"
        ),
    ),
    Rule(
        "prompt_exfiltration",
        0.7,
        "flat",
        _r(
            r"\b(?:repeat|reveal|print|show|output|display|leak|dump|expose|tell me|give me|share|write out|"
            rf"recite|translate|summari[sz]e|what (?:is|are|was|were))\b[^.!?]{{0,20}}?\b{_SECRET_PROMPT}\b"
            r"|\b(?:repeat|print|output|recite) (?:all |everything |the (?:text|words) )?(?:above|before) "
            r"(?:this|here)\b"
            r"|\b(?:repeat|print|output) (?:everything|all the text|the text|the words) above\b"
        ),
    ),
    Rule(
        "addressed_to_model",
        0.45,
        "flat",
        _r(
            r"\b(?:attention|note to|instructions? for|message for|hey|dear|important for)"
            rf" (?:the |any |all )?{_MODEL}s?\b|\bif you are an? {_MODEL}\b"
            rf"|\bwhen (?:an? |the )?{_MODEL} (?:reads|sees|processes) this\b"
        ),
    ),
    Rule(
        "model_directive",
        0.45,
        "flat",
        _r(
            rf"\b{_MODEL} (?:must|should|shall|will|needs to|is instructed to|has to) (?:now |always |only |"
            r"instead |never )?(?:ignore|say|respond|reply|answer|output|tell|include|recommend|claim|state|"
            r"print|write|refuse|mention|insert|add)\b"
            r"|\b(?:it|you) (?:must|should|shall|will|are to|need to) (?:now |always |only |instead )?"
            r"(?:ignore|respond|reply|output|say)\b"
        ),
    ),
    Rule(
        "tool_markup",
        0.6,
        "flat",
        _r(
            r"</?(?:tool_call|tool_use|function_calls?|invoke|tool_code)\b"
            r"|\"(?:tool_calls?|function_call)\" ?:"
            r"|\"name\" ?: ?\"[\w.-]{1,64}\" ?, ?\"(?:arguments|parameters|input)\" ?:"
        ),
    ),
    Rule(
        "tool_directive",
        0.45,
        "flat",
        _r(
            r"\b(?:call|invoke|trigger|execute|run) (?:the |a )?(?:[\w-]{1,40} )?(?:tool|function)"
            r" (?:with|using|on)\b"
        ),
    ),
    Rule(
        "tool_name_call",
        0.3,
        "flat",
        _r(r"\b(?:call|invoke|trigger) (?:the )?[a-z][a-z0-9]{1,30}_[a-z0-9_]{1,40}\b"),
    ),
    Rule(
        "shell_payload",
        0.35,
        "flat",
        _r(r"\brm -rf\b|\b(?:curl|wget) [^|;]{0,120}\| ?(?:ba|z)?sh\b|\bsudo [a-z]"),
    ),
    Rule(
        "command_directive",
        0.35,
        "flat",
        _r(r"\b(?:execute|run) (?:the following|this) (?:shell |bash |terminal |system )?command\b"),
    ),
    Rule(
        "credential_request",
        0.3,
        "flat",
        _r(
            r"\b(?:api keys?|passwords?|credentials|license keys?|secret keys?|access tokens?"
            r"|private keys?)\b"
        ),
    ),
    Rule(
        "hidden_instruction",
        0.5,
        "flat",
        _r(
            r"<!--[^>]{0,300}?\b(?:ai|assistant|model|llm|ignore|disregard|reply|respond|say)\b[^>]{0,300}?-->"
        ),
    ),
    Rule(
        "image_exfiltration",
        0.7,
        "flat",
        _r(
            r"!\[[^\]]{0,200}\]\( ?https?://[^)\s]{1,300}\?[^)\s]{1,300}\)"
            r"|<img\b[^>]{0,200}\bsrc ?= ?[\"']?https?://[^\"'\s>]{1,300}\?"
        ),
    ),
    Rule(
        "send_to_url",
        0.6,
        "flat",
        _r(
            r"\b(?:send|post|upload|forward|transmit|exfiltrate|submit|leak|beacon)\b[^.!?]{0,60}?"
            r"\b(?:to|into|at|via)\b[^.!?]{0,20}?https?://"
            r"|https?://[^\s)]{1,200}\?[^\s)]{0,200}=(?:\{|\$\{|%s|<|\[)"
        ),
    ),
    Rule(
        "chat_template_tokens",
        0.7,
        "flat",
        _r(
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>"
            r"|\[/?inst\]|<</?sys>>"
        ),
    ),
    Rule(
        "fence_spoofing",
        0.6,
        "flat",
        _r(
            r"</(?:source|sources|document|documents|context|data|untrusted[\w-]{0,20}|search_results?|"
            r"retrieved[\w-]{0,20}|knowledge|system|instructions)>|<(?:system|instructions)>"
            r"|\b(?:end|close) of (?:the )?"
            r"(?:sources?|documents?|context|data|search results|untrusted \w{1,20})"
            r"\b|\bbegin (?:the )?(?:system|new|real) (?:prompt|instructions|message)\b"
        ),
    ),
    Rule("fence_close", 0.6, "lines", _r(r"^(?:>>>|<<<\s?sources\b.{0,40})$", re.M)),
    Rule(
        "role_label",
        0.35,
        "lines",
        _r(r"^(?:#{1,6} ?|\*\*|\[)?(?:system|assistant|developer)(?: message| prompt)?(?:\*\*|\])? ?:", re.M),
    ),
)

_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,4096}={0,2}")


@dataclass(frozen=True)
class InjectionScore:
    """``score`` in [0, 1]; ``reasons`` are the rules that fired, strongest first; ``excerpt`` is the
    folded text around the strongest match (at most 160 characters), for the flag record."""

    score: float
    reasons: tuple[str, ...] = ()
    excerpt: str = ""

    def flagged(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        return self.score >= threshold


def _combine(weights: list[float]) -> float:
    return round(1.0 - math.prod(1.0 - w for w in weights), 3) if weights else 0.0


def _excerpt(text: str, match: re.Match[str]) -> str:
    start, end = match.span()
    slack = max(0, (MAX_EXCERPT_CHARS - (end - start)) // 2)
    return text[max(0, start - slack) : max(0, start - slack) + MAX_EXCERPT_CHARS]


def _decoded_blobs(text: str) -> list[str]:
    found: list[str] = []
    for blob in _BASE64.findall(text)[:_MAX_BLOBS]:
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
        if decoded and printable / len(decoded) >= 0.9:
            found.append(decoded)
    return found


def scan_injection(text: str, *, _depth: int = 0) -> InjectionScore:
    raw = HIDDEN_CHARACTERS.sub("", unicodedata.normalize("NFKC", text))
    views = {
        "flat": fold(text),
        "lines": "\n".join(fold(line) for line in raw.splitlines()),
        "raw": raw,
    }
    fired: list[tuple[float, str, str]] = []  # (weight, name, excerpt)
    for rule in RULES:
        match = rule.pattern.search(views[rule.view])
        if match is not None:
            fired.append((rule.weight, rule.name, _excerpt(views[rule.view], match)))
    if _depth == 0:
        for name, inner_texts in (
            ("encoded_payload", _decoded_blobs(raw)),
            ("smuggled_text", [tag_payload(text)]),
        ):
            inner = max(
                (scan_injection(t, _depth=1) for t in inner_texts if t),
                key=lambda s: s.score,
                default=None,
            )
            if inner is not None and inner.score >= _INNER_MIN_SCORE:
                fired.append((max(0.6, inner.score), name, inner.excerpt))
        if hidden_characters(text) >= 3:
            fired.append((0.3, "hidden_characters", ""))
    if not fired:
        return InjectionScore(0.0)
    fired.sort(key=lambda f: (-f[0], f[1]))
    return InjectionScore(
        score=_combine([w for w, _, _ in fired]),
        reasons=tuple(name for _, name, _ in fired),
        excerpt=fired[0][2] or fired[0][1],
    )
