"""The RPC contract of the dedalus worker (gateway -> dedalus over the service binding)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["HealthReply"]


class HealthReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    status: Literal["ok", "degraded"]
    bindings: list[str]
