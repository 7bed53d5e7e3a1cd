"""Merge the two ways Python code passes a JS options object to a binding method.

Pyodide turns keyword arguments into a trailing options object, so at the edge
``kv.put(k, v, {"expirationTtl": 60})`` and ``kv.put(k, v, expirationTtl=60)`` are the same call. The
emulators accept both through :func:`merge_options` and reject unknown option names, which the real
bindings would silently ignore: a typo here is a bug at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["merge_options"]


def merge_options(
    options: Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
    *,
    allowed: Iterable[str],
    where: str,
) -> dict[str, Any]:
    """Return one options dict from a positional options mapping and keyword arguments.

    ``None`` values are dropped (``None`` maps to JS ``null``/``undefined``, which the bindings treat as
    absent). Unknown names raise ``TypeError`` naming the method and the accepted options.
    """
    merged: dict[str, Any] = {}
    if options is not None:
        if not isinstance(options, Mapping):
            raise TypeError(f"{where}: options must be an object, got {type(options).__name__}")
        merged.update(options)
    # A keyword left at None means "not given": it must not erase the same option in the dict.
    merged.update({k: v for k, v in kwargs.items() if v is not None})
    allowed_set = set(allowed)
    unknown = sorted(set(merged) - allowed_set)
    if unknown:
        raise TypeError(f"{where}: unknown option(s) {unknown}; accepted: {sorted(allowed_set)}")
    return {k: v for k, v in merged.items() if v is not None}
