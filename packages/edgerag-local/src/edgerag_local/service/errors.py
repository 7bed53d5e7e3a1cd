"""The errors the local service binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError, RpcSerializationError

__all__ = ["RpcSerializationError", "ServiceBindingError"]


class ServiceBindingError(BindingError):
    """A service binding call that cannot be routed (unknown method, target not running)."""
