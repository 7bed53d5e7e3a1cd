"""The errors the local ai binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["AiError"]


class AiError(BindingError):
    """``AiError: <reason>``: unknown model, invalid input."""
