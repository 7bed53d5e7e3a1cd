"""Output filtering: secrets and the tenant's patterns are redacted from answers, whole or streamed.

:func:`filter_output` redacts a whole text; :class:`OutputFilter` does the same to a token stream and
emits exactly the same text in the end (tests/unit/test_safety.py checks every split). Each redacted
span becomes ``[redacted:<name>]``.

Built-in secret shapes (:data:`SECRET_PATTERNS`, on unless the policy sets ``redact_secrets: false``):
this project's API keys (``er_<prefix>_<secret>``), ``sk-...`` keys (OpenAI, Anthropic and others),
AWS access key ids and ``aws_secret_access_key = ...`` assignments, GitHub, Slack and Google API
tokens, JWTs, ``Bearer <token>`` and PEM private key blocks (an unterminated block is redacted to the
end). Tenant rules (``output`` in the policy) are in the safe regex subset.

Streaming design. A secret can arrive split across tokens (``"er_ab"``, ``"c123..."``), so the filter
keeps a small buffer and only emits text that no later token can turn into (part of) a match:

* the last ``hold`` characters are always held back: enough to complete any tenant pattern (their
  matches are at most :data:`edgerag.safety.regex.MAX_WIDTH` long, so ``hold`` is the longest one) or
  the longest trigger of a built-in secret (:data:`_MIN_HOLD`);
* a match that reaches the end of the buffer is held whole (more tokens could extend it), and so is a
  *candidate*: a built-in secret's trigger (``sk-``, ``eyJ``, ``Bearer``, ``-----BEGIN``, ...) followed by
  token characters up to the end of the buffer, however long, until a character ends it;
* the emitted part never ends inside a match. Matching resumes with a few characters of context, so
  ``\\b`` and look-behinds see what the whole text would show them.

So the delay is ``hold`` characters (24 with no tenant rules) except while a candidate is open.
:meth:`OutputFilter.flush` redacts and returns whatever is still held when the stream ends.

To add a built-in secret: append to :data:`SECRET_PATTERNS` (bounded quantifiers) and, if a match can
be longer than :data:`_MIN_HOLD`, add its opening to :data:`_CANDIDATE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from edgerag.safety.policy import DEFAULT_POLICY, SafetyPolicy
from edgerag.safety.regex import match_width

__all__ = ["SECRET_PATTERNS", "OutputFilter", "Redaction", "filter_output"]

_NOT_TOKEN_BEFORE = r"(?<![A-Za-z0-9_-])"
SECRET_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----(?:[\s\S]{0,16384}?"
            r"-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----|[\s\S]{0,16384})"
        ),
    ),
    ("edgerag_api_key", re.compile(_NOT_TOKEN_BEFORE + r"er_[a-z0-9]{12}_[A-Za-z0-9_-]{43,128}")),
    ("secret_key", re.compile(_NOT_TOKEN_BEFORE + r"sk-[A-Za-z0-9_-]{20,300}")),
    ("aws_access_key_id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])")),
    (
        "aws_secret_access_key",
        re.compile(r"(?i:aws_?secret(?:_?access)?_?key)[\"']?\s{0,3}[:=]\s{0,3}[\"']?[A-Za-z0-9/+=]{40}"),
    ),
    (
        "github_token",
        re.compile(_NOT_TOKEN_BEFORE + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_\w{22,255})"),
    ),
    ("slack_token", re.compile(_NOT_TOKEN_BEFORE + r"xox[abprs]-[A-Za-z0-9-]{10,200}")),
    ("google_api_key", re.compile(_NOT_TOKEN_BEFORE + r"AIza[0-9A-Za-z_-]{35}")),
    (
        "jwt",
        re.compile(
            _NOT_TOKEN_BEFORE + r"eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{8,4096}"
        ),
    ),
    ("bearer_token", re.compile(r"(?i:\bbearer)\s{1,5}[A-Za-z0-9._~+/=-]{16,4096}")),
)

# Openings of built-in secrets that can be longer than _MIN_HOLD, running to the end of the buffer.
_CANDIDATE: Final = re.compile(
    _NOT_TOKEN_BEFORE + r"(?:er_|sk-|AKIA|ASIA|AGPA|AIDA|AROA|eyJ|gh[pousr]_|github_pat_|xox[abprs]-|AIza)"
    r"[A-Za-z0-9_.+/=-]{0,16384}\Z"
    r"|(?i:\bbearer)\s{0,5}[A-Za-z0-9._~+/=-]{0,4096}\Z"
    r"|(?i:aws_?secret)[^\n]{0,100}\Z"
    r"|-----BEGIN[A-Z0-9 ]{0,80}-{0,5}\Z"
)
_MIN_HOLD: Final = 24  # longer than every trigger above ("aws_secret_access_key" is 21)
_CONTEXT: Final = 8  # characters of emitted text kept for look-behinds and \b


@dataclass(frozen=True)
class Redaction:
    """One redacted span: which rule matched and how many characters it replaced."""

    name: str
    length: int


_Span = tuple[int, int, str]


def _patterns(policy: SafetyPolicy) -> list[tuple[str, re.Pattern[str]]]:
    builtin = list(SECRET_PATTERNS) if policy.redact_secrets else []
    return builtin + [(rule.name, rule.regex) for rule in policy.output_rules]


def _spans(patterns: list[tuple[str, re.Pattern[str]]], text: str, pos: int) -> list[_Span]:
    """Every match from ``pos``, overlapping ones merged (named after the earliest), in order."""
    found = sorted(
        (m.start(), m.end(), name)
        for name, regex in patterns
        for m in regex.finditer(text, pos)
        if m.end() > m.start()
    )
    merged: list[_Span] = []
    for start, end, name in found:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, name))
    return merged


def _redact(text: str, start: int, stop: int, spans: list[_Span]) -> tuple[str, list[Redaction]]:
    parts: list[str] = []
    redactions: list[Redaction] = []
    at = start
    for s, e, name in spans:
        parts.append(text[at:s])
        parts.append(f"[redacted:{name}]")
        redactions.append(Redaction(name, e - s))
        at = e
    parts.append(text[at:stop])
    return "".join(parts), redactions


def filter_output(text: str, policy: SafetyPolicy = DEFAULT_POLICY) -> tuple[str, list[Redaction]]:
    """``text`` with secrets and the policy's output patterns replaced by ``[redacted:<name>]``."""
    return _redact(text, 0, len(text), _spans(_patterns(policy), text, 0))


class OutputFilter:
    """Incremental :func:`filter_output`: ``feed`` each token, send what it returns, then ``flush``.

    ``redactions`` accumulates what was redacted so far.
    """

    def __init__(self, policy: SafetyPolicy = DEFAULT_POLICY) -> None:
        self._patterns = _patterns(policy)
        self._hold = max([_MIN_HOLD, *(match_width(rule.regex.pattern) for rule in policy.output_rules)])
        self._context = ""
        self._buffer = ""
        self.redactions: list[Redaction] = []

    @property
    def held(self) -> int:
        """Characters received but not emitted yet."""
        return len(self._buffer)

    def feed(self, piece: str) -> str:
        self._buffer += piece
        text = self._context + self._buffer
        base, end = len(self._context), len(text)
        spans = _spans(self._patterns, text, base)
        cut = end - self._hold
        for s, e, _ in spans:
            if e >= end:  # more text could extend this match
                cut = min(cut, s)
        candidate = _CANDIDATE.search(text, base)
        if candidate is not None:
            cut = min(cut, candidate.start())
        for s, e, _ in spans:
            if s < cut < e:
                cut = s
        if cut <= base:
            return ""
        out, redactions = _redact(text, base, cut, [sp for sp in spans if sp[1] <= cut])
        self.redactions.extend(redactions)
        self._context = text[max(0, cut - _CONTEXT) : cut]
        self._buffer = text[cut:]
        return out

    def flush(self) -> str:
        text = self._context + self._buffer
        base = len(self._context)
        out, redactions = _redact(text, base, len(text), _spans(self._patterns, text, base))
        self.redactions.extend(redactions)
        self._context, self._buffer = "", ""
        return out
