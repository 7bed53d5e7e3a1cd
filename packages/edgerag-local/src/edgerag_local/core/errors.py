"""Errors raised by the local binding emulators.

At the edge a failing binding call raises a JavaScript ``Error`` that reaches Python as
``pyodide.ffi.JsException`` whose message carries Cloudflare's text (``D1_ERROR: ...``,
``KV PUT failed: 400 ...``). Worker code therefore never catches a binding-specific class: it catches
``Exception`` at the boundary and reads the message. The emulators raise subclasses of
:class:`BindingError` whose messages follow Cloudflare's wording, so the same handling works here.

Argument errors that the JS runtime reports as ``TypeError``/``RangeError`` are raised as Python
``TypeError``/``ValueError`` subclasses, matching what Pyodide surfaces for those.
"""

from __future__ import annotations

__all__ = ["BindingError", "RpcSerializationError"]


class BindingError(Exception):
    """A binding call failed the way the Cloudflare binding would fail."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class RpcSerializationError(TypeError):
    """A value that Workers RPC cannot serialise (tuple, bytearray, awaitables, ...)."""
