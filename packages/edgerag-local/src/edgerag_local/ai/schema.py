"""Input validation for local Workers AI models, worded like Workers AI's own errors.

Workers AI validates ``inputs`` against the model's JSON schema before running it and rejects a bad call
with internal code 5006; the binding throws ``AiError`` whose message reads, for example,
``5006: Error: required properties at '/' are 'text'`` or
``5006: Error: oneOf at '/' not met, 0 matches: ... Type mismatch of '/messages/1/content', 'array' not
in 'string'`` or ``enum function not in custom at '/tools/0/type'`` (wordings seen in public reports of
the live service). An unknown model is code 5007, ``No such model <id> or task`` (Workers AI error table).

The helpers below produce those shapes so worker code that inspects the code (``5006`` = caller's fault,
do not retry) behaves the same locally. Wordings for limits that no public report shows (``maxItems``,
``minLength``, the token limit) follow the same pattern and are marked as local in their text.

Each model module calls these helpers on its own schema; to validate a new kind of field, add a helper
here that raises :func:`invalid`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from edgerag_local.ai.errors import AiError

__all__ = [
    "INVALID_INPUT",
    "NO_SUCH_MODEL",
    "check_bool",
    "check_enum",
    "check_int",
    "check_string",
    "invalid",
    "json_type",
    "require_object",
]

INVALID_INPUT = 5006
NO_SUCH_MODEL = 5007


def invalid(detail: str) -> NoReturn:
    """Raise the schema-validation error Workers AI raises (code 5006)."""
    raise AiError(f"AiError: {INVALID_INPUT}: Error: {detail}")


def json_type(value: Any) -> str:
    """The JSON type name of a Python value, as the schema validator reports it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def require_object(inputs: Any, required: Sequence[str], path: str = "/") -> Mapping[str, Any]:
    """``inputs`` must be an object holding every ``required`` property."""
    if not isinstance(inputs, Mapping):
        invalid(f"Type mismatch of '{path}', '{json_type(inputs)}' not in 'object'")
    missing = [name for name in required if name not in inputs or inputs[name] is None]
    if missing:
        invalid(f"required properties at '{path}' are '{','.join(missing)}'")
    return inputs


def check_string(value: Any, path: str, *, min_length: int = 0) -> str:
    if not isinstance(value, str):
        invalid(f"Type mismatch of '{path}', '{json_type(value)}' not in 'string'")
    if len(value) < min_length:
        invalid(f"String at '{path}' is shorter than minLength {min_length}")
    return value


def check_int(value: Any, path: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        invalid(f"Type mismatch of '{path}', '{json_type(value)}' not in 'integer'")
    if minimum is not None and value < minimum:
        invalid(f"Number at '{path}' is less than minimum {minimum}")
    return value


def check_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        invalid(f"Type mismatch of '{path}', '{json_type(value)}' not in 'boolean'")
    return value


def check_enum(value: Any, allowed: Sequence[str], path: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        invalid(f"enum {value} not in {','.join(allowed)} at '{path}'")
    return value
