"""Local service bindings between workers (``fetch`` and Workers RPC).

- :mod:`.binding`: the binding object; :mod:`.errors`: routing and RPC serialisation errors.
"""

from __future__ import annotations

from .binding import (
    LocalFetcher,
    ServiceTarget,
    rpc_clone,
)
from .errors import (
    RpcSerializationError,
    ServiceBindingError,
)

__all__ = [
    "LocalFetcher",
    "RpcSerializationError",
    "ServiceBindingError",
    "ServiceTarget",
    "rpc_clone",
]
