"""Turn values that arrive from the runtime into plain Python, without importing ``pyodide``.

With the wrapped SDK most values arrive converted already (``JsDict``, lists, ``memoryview``); a raw
``JsProxy`` still has ``to_py()``. Duck typing keeps this module importable under CPython.
"""

from __future__ import annotations

from typing import Any

__all__ = ["to_py"]


def to_py(value: Any) -> Any:
    converter = getattr(value, "to_py", None)
    if callable(converter):
        return converter()
    return value
