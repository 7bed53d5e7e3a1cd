"""A safe subset of regular expressions for tenant-written patterns (deny-lists, output rules).

Python's ``re`` backtracks and has no timeout, so one careless tenant pattern (``(a+)+b``, or even
``\\w*\\w*x``: about 11 s over 2,000 characters) would stall a Worker on every request. Tenant patterns
are therefore checked once, when the policy is written, against rules that bound the work of a match:

* at most :data:`MAX_PATTERN_CHARS` characters;
* no unbounded quantifier (``*``, ``+``, ``{m,}``): write ``\\w{1,40}``; bounded quantifiers up to
  ``{0,`` :data:`MAX_REPEAT` ``}``;
* no quantifier inside a quantified group, and no alternation inside a quantified group (the shapes
  behind catastrophic backtracking);
* no backreferences, lookarounds, conditionals, atomic groups or possessive quantifiers;
* the *backtracking bound* — the product of every quantifier's number of choices (``max - min + 1``),
  with alternatives adding their bounds — is at most :data:`MAX_BACKTRACK`, so trying the pattern at
  one position costs a bounded number of steps and a whole scan is linear in the text;
* a match is at most :data:`MAX_WIDTH` characters, which is also how much a streaming output filter
  holds back (:mod:`edgerag.safety.output`).

Patterns are compiled case-insensitively. The check walks the parse tree from the standard library's
own parser (``re._parser``, the module ``re`` compiles with on CPython 3.11+ and Pyodide), so what is
checked is exactly what runs. To allow another construct: add its opcode to the walk in
:func:`_cost` with the bound it adds, and a test in tests/unit/test_safety.py.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

__all__ = [
    "MAX_BACKTRACK",
    "MAX_PATTERN_CHARS",
    "MAX_REPEAT",
    "MAX_WIDTH",
    "UnsafePatternError",
    "compile_safe",
    "match_width",
]

MAX_PATTERN_CHARS: Final = 200
MAX_REPEAT: Final = 100
MAX_BACKTRACK: Final = 256
MAX_WIDTH: Final = 256

# The parser ``re`` itself uses (typeshed has no stub for the private module, hence Any).
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT}
_LEAVES = {_c.LITERAL, _c.NOT_LITERAL, _c.IN, _c.ANY, _c.AT, _c.CATEGORY, _c.RANGE, _c.NEGATE}
_FORBIDDEN = {
    _c.GROUPREF: "backreferences",
    _c.GROUPREF_EXISTS: "conditional groups",
    _c.ASSERT: "lookahead/lookbehind",
    _c.ASSERT_NOT: "negative lookahead/lookbehind",
}
for _name, _what in (("ATOMIC_GROUP", "atomic groups"), ("POSSESSIVE_REPEAT", "possessive quantifiers")):
    if hasattr(_c, _name):
        _FORBIDDEN[getattr(_c, _name)] = _what


class UnsafePatternError(ValueError):
    """The pattern is not valid, or not in the safe subset; the message says which rule it breaks."""


def _cost(items: Any, in_repeat: bool) -> int:
    """The backtracking bound of a parsed (sub)pattern; raises for constructs outside the subset."""
    total = 1
    for op, av in items:
        if op in _FORBIDDEN:
            raise UnsafePatternError(f"{_FORBIDDEN[op]} are not allowed")
        if op in _LEAVES:
            continue
        if op is _c.SUBPATTERN:
            total *= _cost(av[-1], in_repeat)
        elif op is _c.BRANCH:
            if in_repeat:
                raise UnsafePatternError("alternation inside a quantified group is not allowed")
            total *= sum(_cost(branch, in_repeat) for branch in av[1])
        elif op in _REPEATS:
            low, high, body = av
            if in_repeat:
                raise UnsafePatternError("nested quantifiers are not allowed")
            if high is _c.MAXREPEAT or high > MAX_REPEAT:
                raise UnsafePatternError(
                    f"quantifiers need an upper bound of at most {MAX_REPEAT} (write {{0,40}}, not * or +)"
                )
            total *= (high - low + 1) * _cost(body, True)
        else:
            raise UnsafePatternError(f"the construct {op} is not allowed")
        if total > MAX_BACKTRACK:
            raise UnsafePatternError(
                f"the pattern allows too many ways to match (more than {MAX_BACKTRACK}): "
                "use fewer or smaller quantifiers"
            )
    return total


def compile_safe(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` case-insensitively if it is in the safe subset; else UnsafePatternError."""
    if not pattern:
        raise UnsafePatternError("the pattern is empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafePatternError(f"the pattern has more than {MAX_PATTERN_CHARS} characters")
    try:
        parsed = _parser.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UnsafePatternError(f"not a valid regular expression: {exc.msg}") from None
    _cost(parsed, False)
    low, high = parsed.getwidth()
    if low == 0:
        raise UnsafePatternError("the pattern can match the empty string")
    if high > MAX_WIDTH:
        raise UnsafePatternError(f"the pattern can match more than {MAX_WIDTH} characters")
    return re.compile(pattern, re.IGNORECASE)


def match_width(pattern: str) -> int:
    """The most characters a match of ``pattern`` (already known to be bounded) can span."""
    return int(_parser.parse(pattern, re.IGNORECASE).getwidth()[1])
