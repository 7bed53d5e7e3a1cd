"""The dedalus service: the operations other workers call over the service binding.

Each public coroutine is exposed as an RPC method by the entry module; arguments and results are plain
Python values (dict, list, str, numbers, bool, None) validated with the contracts in
``edgerag.contracts.dedalus``.
"""

from __future__ import annotations

from typing import Any

from edgerag.contracts.dedalus import HealthReply

__all__ = ["DedalusService"]

SERVICE_NAME = "dedalus"


class DedalusService:
    def __init__(self, env: Any) -> None:
        self._env = env

    async def health(self) -> dict[str, Any]:
        bindings = sorted(name for name in ("AI", "CACHE") if _has_binding(self._env, name))
        return HealthReply(service=SERVICE_NAME, status="ok", bindings=bindings).model_dump()


def _has_binding(env: Any, name: str) -> bool:
    return getattr(env, name, None) is not None
