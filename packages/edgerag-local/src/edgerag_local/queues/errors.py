"""The errors the local queues binding raises, worded as Cloudflare words them (see
:mod:`edgerag_local.core.errors`)."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["QueueError"]


class QueueError(BindingError):
    """Queue producer errors (size and count limits)."""
