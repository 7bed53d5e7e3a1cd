"""A tenant's safety policy: input limits, the deny-list, what to do with flagged content, output rules.

One validated document per tenant (stored as JSON in ``safety_policies``, migrations/0008_safety.sql,
by :mod:`edgerag.safety.store`); a tenant without a row gets :data:`DEFAULT_POLICY`. Every regex in it
is checked by :func:`edgerag.safety.regex.compile_safe` when the policy is parsed, so a stored policy
can never stall a request, and compiled once per policy object (:meth:`SafetyPolicy.deny_rules`).

Actions for content the injection detector scores at or above ``injection_threshold``:

* user messages (``on_flagged_input``): ``allow`` (default: record the flag, answer anyway) or
  ``block`` (record it and refuse the request with a ``content-blocked`` problem);
* retrieved sources (``on_flagged_source``): ``allow`` (default: record it, keep the source — it is
  fenced as data in the prompt anyway, and a document *about* prompt injection is legitimate), ``drop``
  (record it, leave the source out, answer from the rest) or ``block`` (refuse the request).

Deny-list matches always refuse the request: that is what a deny-list is for.

To add a setting: add a field with a default (stored policies stay valid) and bounds, and read it in
the check that uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, field_validator

from edgerag.safety.normalize import fold
from edgerag.safety.regex import MAX_PATTERN_CHARS, UnsafePatternError, compile_safe

__all__ = [
    "DEFAULT_MAX_INPUT_CHARS",
    "DEFAULT_POLICY",
    "CompiledRule",
    "DenyRule",
    "OutputRule",
    "PhraseRule",
    "RegexRule",
    "Rule",
    "SafetyPolicy",
]

DEFAULT_MAX_INPUT_CHARS: Final = 8000
MAX_INPUT_CHARS_LIMIT: Final = 32000
MAX_DENY_RULES: Final = 100
MAX_OUTPUT_RULES: Final = 50

RuleName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
_Phrase = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS)]


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to match: ``regex`` runs on folded text (:func:`edgerag.safety.normalize.fold`)."""

    name: str
    regex: re.Pattern[str]


_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class PhraseRule(BaseModel):
    """A literal phrase: matched case-insensitively, words in order with any whitespace between."""

    model_config = _STRICT

    name: RuleName = Field(description="reported when the rule matches (lower case, digits, _ . -)")
    phrase: _Phrase = Field(description="the phrase (not blank once invisible characters are dropped)")

    @field_validator("phrase")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not fold(value):
            raise ValueError("the phrase is blank")
        return value

    def compiled(self, *, folded: bool) -> CompiledRule:
        # Words in order, any whitespace run between them (folded text has single spaces).
        words = (fold(self.phrase) if folded else self.phrase).split()
        gap = " " if folded else r"\s{1,10}"
        return CompiledRule(self.name, re.compile(gap.join(map(re.escape, words)), re.IGNORECASE))


class RegexRule(BaseModel):
    """A regular expression in the safe subset (:mod:`edgerag.safety.regex`), case-insensitive."""

    model_config = _STRICT

    name: RuleName = Field(description="reported when the rule matches (lower case, digits, _ . -)")
    regex: _Phrase = Field(
        description="bounded quantifiers such as \\w{1,40} (no * or +), no nested quantifiers, "
        "backreferences or lookarounds; a 422 names the rule a pattern breaks"
    )

    @field_validator("regex")
    @classmethod
    def _safe(cls, value: str) -> str:
        try:
            compile_safe(value)
        except UnsafePatternError as exc:
            raise ValueError(str(exc)) from None
        return value

    def compiled(self, *, folded: bool) -> CompiledRule:
        return CompiledRule(self.name, compile_safe(self.regex))


def _rule_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "regex" if "regex" in value else "phrase"
    return "regex" if isinstance(value, RegexRule) else "phrase"


# A rule is exactly one of the two shapes (the schema says so: oneOf of two closed objects).
Rule = Annotated[
    Annotated[PhraseRule, Tag("phrase")] | Annotated[RegexRule, Tag("regex")], Discriminator(_rule_kind)
]
DenyRule = Rule  # a user message matching one is refused, naming the rule
OutputRule = Rule  # text matching one is redacted from answers as [redacted:<name>]


class SafetyPolicy(BaseModel):
    model_config = _STRICT

    max_input_chars: int = Field(
        default=DEFAULT_MAX_INPUT_CHARS,
        ge=1,
        le=MAX_INPUT_CHARS_LIMIT,
        description="longest user message accepted, in characters",
    )
    deny: list[DenyRule] = Field(
        default_factory=list, max_length=MAX_DENY_RULES, description="user messages matching one are refused"
    )
    injection_threshold: float = Field(
        default=0.5, ge=0.05, le=1.0, description="injection score at or above which content is flagged"
    )
    on_flagged_input: Literal["allow", "block"] = Field(
        default="allow",
        description="a flagged user message: allow (record only) or block (refuse the request)",
    )
    on_flagged_source: Literal["allow", "drop", "block"] = Field(
        default="allow",
        description="a flagged retrieved source: allow (record only), drop (answer without it) or block",
    )
    redact_secrets: bool = Field(
        default=True, description="redact API keys, tokens and private keys from answers (built-in patterns)"
    )
    output: list[OutputRule] = Field(
        default_factory=list, max_length=MAX_OUTPUT_RULES, description="tenant patterns redacted from answers"
    )

    @field_validator("deny", "output")
    @classmethod
    def _unique_names(cls, rules: list[PhraseRule | RegexRule]) -> list[PhraseRule | RegexRule]:
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
        return rules

    @cached_property
    def deny_rules(self) -> tuple[CompiledRule, ...]:
        return tuple(rule.compiled(folded=True) for rule in self.deny)

    @cached_property
    def output_rules(self) -> tuple[CompiledRule, ...]:
        # Output is redacted in place, so these run on the text as written (case-insensitively).
        return tuple(rule.compiled(folded=False) for rule in self.output)


DEFAULT_POLICY: Final = SafetyPolicy()
