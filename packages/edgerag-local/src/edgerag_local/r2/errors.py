"""The errors the local r2 binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["R2Error"]


class R2Error(BindingError):
    """R2 errors (``<method>: <message> (<v4 code>)``, as workerd words them)."""
