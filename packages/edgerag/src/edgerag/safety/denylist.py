"""Input checks for user messages: the length limit and the tenant's deny-list.

:func:`check_input` is pure and cheap (the deny-list regexes are in the safe subset of
:mod:`edgerag.safety.regex`, so the scan is linear in the text). It matches against the folded text
(:func:`edgerag.safety.normalize.fold`), so ``SeCrEt`` and full-width or zero-width-split spellings of a
denied phrase match too. The verdict names every rule that matched; the gateway refuses the request
with a ``content-blocked`` problem that lists them (never the matched text, which may be sensitive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgerag.safety.normalize import fold
from edgerag.safety.policy import SafetyPolicy

__all__ = ["InputVerdict", "check_input"]


@dataclass(frozen=True)
class InputVerdict:
    """``allowed`` is False when the text is too long or matched a deny rule; ``reasons`` says why
    (``too_long``, ``deny:<rule name>``), in that order."""

    allowed: bool
    length: int
    too_long: bool = False
    denied: tuple[str, ...] = field(default=())

    @property
    def reasons(self) -> list[str]:
        return (["too_long"] if self.too_long else []) + [f"deny:{name}" for name in self.denied]


def check_input(text: str, policy: SafetyPolicy) -> InputVerdict:
    length = len(text)
    if length > policy.max_input_chars:
        # Not scanned: the limit exists so that nothing does work proportional to an over-long input.
        return InputVerdict(allowed=False, length=length, too_long=True)
    folded = fold(text)
    denied = tuple(rule.name for rule in policy.deny_rules if rule.regex.search(folded))
    return InputVerdict(allowed=not denied, length=length, denied=denied)
