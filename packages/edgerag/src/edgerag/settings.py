"""Typed settings parsed once from a worker's ``env`` vars.

Each worker defines a frozen settings class with :func:`var` fields and builds it with
:func:`load_settings`. A required var that is missing fails with its name; a var that does not parse
fails with its name and value. Settings are cached per distinct set of var values, so parsing happens
once per isolate, not once per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, field, fields
from typing import Any, TypeVar

__all__ = ["SettingsError", "load_settings", "non_negative_float", "positive_int", "var"]

T = TypeVar("T")
_CACHE: dict[tuple[type[Any], tuple[tuple[str, str], ...]], Any] = {}


class SettingsError(ValueError):
    """A var is missing or malformed; the message names it."""


def var(name: str, parse: Callable[[str], Any] = str, default: Any = MISSING) -> Any:
    """Declare a settings field read from env var ``name`` and parsed with ``parse``."""
    return field(default=default, metadata={"var": name, "parse": parse})


def load_settings(cls: type[T], env: Any) -> T:
    """Build ``cls`` (a frozen dataclass whose fields use :func:`var`) from ``env``'s vars."""
    raw: dict[str, str] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name = f.metadata["var"]
        value = getattr(env, name, None)
        if value is not None:
            raw[f.name] = str(value)
    key = (cls, tuple(sorted(raw.items())))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name, parse = f.metadata["var"], f.metadata["parse"]
        if f.name not in raw:
            if f.default is MISSING:
                raise SettingsError(f"missing required var {name}")
            values[f.name] = f.default
            continue
        try:
            values[f.name] = parse(raw[f.name])
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"var {name}={raw[f.name]!r} is invalid: {exc}") from exc
    settings = cls(**values)
    _CACHE[key] = settings
    return settings


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be a number >= 0")
    return value
