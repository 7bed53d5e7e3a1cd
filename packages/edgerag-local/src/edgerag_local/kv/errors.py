"""The errors the local kv binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["KVError"]


class KVError(BindingError):
    """``KV <OP> failed: <status> <reason>`` and KV's limit errors."""
