"""The errors the local vectorize binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["VectorizeError"]


class VectorizeError(BindingError):
    """``VECTOR_<OP>_ERROR (code = N): <reason>``."""
