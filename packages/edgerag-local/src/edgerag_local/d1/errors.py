"""The errors the local d1 binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["D1Error"]


class D1Error(BindingError):
    """``D1_ERROR: <sqlite message>`` and D1's limit errors."""
