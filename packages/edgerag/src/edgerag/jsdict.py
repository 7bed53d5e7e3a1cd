"""The result type bindings hand back: a dict that also allows attribute access.

From workers-runtime-sdk 1.3 the Python Workers SDK wraps binding results as ``JsDict``: a real
``dict`` whose keys can also be read as attributes (``result.meta.changes`` as well as
``result["meta"]["changes"]``). Worker code is written against that shape, and the local emulators
return :class:`AttrDict` so the same code runs unchanged under CPython.

Keys that collide with ``dict`` methods must be read by subscript: ``result["keys"]`` of a KV list
result, not ``result.keys`` (which is the method, in ``JsDict`` too).

Nested dicts are converted on construction, lists of dicts element-wise; everything else is left as it
is. Reading a missing attribute raises ``AttributeError`` (as ``JsDict`` does), never returns ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["AttrDict", "to_attrdict"]


class AttrDict(dict[str, Any]):
    """A ``dict`` whose keys are also attributes; nested mappings become ``AttrDict`` too."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            dict.__setitem__(self, key, to_attrdict(value))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = to_attrdict(value)

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


def to_attrdict(value: Any) -> Any:
    """Convert mappings (recursively, also inside lists) to :class:`AttrDict`."""
    if isinstance(value, AttrDict):
        return value
    if isinstance(value, Mapping):
        return AttrDict(value)
    if isinstance(value, list):
        return [to_attrdict(v) for v in value]
    return value
