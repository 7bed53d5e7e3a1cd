"""The ingest queue message: gateway -> ingest, one per uploaded document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["IngestMessage"]


class IngestMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    tenant_id: str = Field(min_length=1, max_length=64)
    document_id: str = Field(min_length=1, max_length=64)
    r2_key: str = Field(min_length=1, max_length=1024)
    content_type: str = Field(min_length=1, max_length=100)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    enqueued_at: str

    def to_body(self) -> dict[str, Any]:
        """A JSON-able dict: what crosses the queue (never the model itself)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_body(cls, body: Any) -> IngestMessage:
        return cls.model_validate(dict(body) if not isinstance(body, dict) else body)
