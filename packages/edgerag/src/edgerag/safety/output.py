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

* the end of the buffer is held back while it could still become the trigger of a built-in secret
  (``"-----BEG"``, ``"Bear"``, a word-initial ``"s"``: a proper prefix of one of :data:`_TRIGGERS` where
  that trigger may start), and with tenant
  rules the last ``hold`` characters always are (their matches are at most
  :data:`edgerag.safety.regex.MAX_WIDTH` long, so ``hold`` is the longest one);
* a match that reaches the end of the buffer is held whole (more tokens could extend it), and so is a
  *candidate*: a built-in secret's trigger (``sk-``, ``eyJ``, ``Bearer``, ``-----BEGIN``, ...) followed by
  token characters up to the end of the buffer, however long, until a character ends it;
* the emitted part never ends inside a match. Matching resumes with a few characters of context, so
  ``\\b`` and look-behinds see what the whole text would show them.

So ordinary text is not delayed at all without tenant rules (only a possible trigger at its very end
is), and by at most ``hold`` characters with them, except while a candidate is open. While
one is open, tokens made only of token characters are appended without a rescan, so a long held run
costs linear, not quadratic, time.
:meth:`OutputFilter.flush` redacts and returns whatever is still held when the stream ends.

To add a built-in secret: append to :data:`SECRET_PATTERNS` (bounded quantifiers); its opening goes
into :data:`_CANDIDATE` and :data:`_TRIGGERS` (every built-in match starts with a trigger: that is
what lets the stream emit everything before one without delay).
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
_TOKEN_CHARS: Final = re.compile(r"[A-Za-z0-9_.+/=-]*")  # extends every candidate above
# The triggers themselves, so that a trigger split across tokens ("-----BEG" + "IN") is held while the
# end of the buffer could still become one. Each with what may not precede it (the same look-behinds as
# the patterns: "answ" + "er" is no key) and whether it is compared case-insensitively.
_TOKEN_BEFORE = re.compile(r"[A-Za-z0-9_-]")
_UPPER_BEFORE = re.compile(r"[A-Z0-9]")
_WORD_BEFORE = re.compile(r"\w")
_TRIGGERS: Final[tuple[tuple[str, re.Pattern[str] | None, bool], ...]] = (
    *((t, _TOKEN_BEFORE, False) for t in ("er_", "sk-", "eyJ", "ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    *(
        (t, _TOKEN_BEFORE, False)
        for t in ("github_pat_", "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "AIza")
    ),
    *((t, _UPPER_BEFORE, False) for t in ("AKIA", "ASIA", "AGPA", "AIDA", "AROA")),
    ("bearer", _WORD_BEFORE, True),
    ("aws_secret", None, True),
    ("awssecret", None, True),
    ("-----BEGIN", None, False),
)
_LONGEST_TRIGGER: Final = max(len(t) for t, _, _ in _TRIGGERS)
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
        self._hold = max([0, *(match_width(rule.regex.pattern) for rule in policy.output_rules)])
        self._context = ""
        self._buffer = ""
        self._open = False  # whether the last scan found a candidate running to the end
        self.redactions: list[Redaction] = []

    @property
    def held(self) -> int:
        """Characters received but not emitted yet."""
        return len(self._buffer)

    def feed(self, piece: str) -> str:
        self._buffer += piece
        if self._open and _TOKEN_CHARS.fullmatch(piece):
            # The open candidate still runs to the end, so nothing new can be emitted: skip the scan
            # (rescanning a long held run on every token would be quadratic).
            return ""
        text = self._context + self._buffer
        base, end = len(self._context), len(text)
        spans = _spans(self._patterns, text, base)
        cut = min(end - self._hold, _trigger_prefix_start(text, base))
        for s, e, _ in spans:
            if e >= end:  # more text could extend this match
                cut = min(cut, s)
        candidate = _CANDIDATE.search(text, base)
        self._open = candidate is not None
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
        self._context, self._buffer, self._open = "", "", False
        return out


def _prefix_alternatives(trigger: str, folded: bool) -> str:
    prefixes = "|".join(re.escape(trigger[:n]) for n in range(len(trigger), 0, -1))
    return f"(?i:{prefixes})" if folded else f"(?:{prefixes})"


# One regex for "the end of the buffer is the start of a trigger", with each trigger's look-behind.
_TRIGGER_PREFIX: Final = re.compile(
    "|".join(
        (f"(?<!{not_after.pattern})" if not_after is not None else "")
        + _prefix_alternatives(trigger, folded)
        + r"\Z"
        for trigger, not_after, folded in _TRIGGERS
    )
)


def _trigger_prefix_start(text: str, base: int) -> int:
    """Where the longest end of ``text`` (after ``base``) that could still grow into a trigger starts,
    or ``len(text)`` when there is none."""
    match = _TRIGGER_PREFIX.search(text, max(base, len(text) - _LONGEST_TRIGGER))
    return len(text) if match is None else match.start()
