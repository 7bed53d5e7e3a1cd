"""The ingest queue consumer (filled in by the ingestion slice)."""

from __future__ import annotations

from typing import Any

__all__ = ["handle_batch"]


async def handle_batch(batch: Any, env: Any) -> None:
    raise NotImplementedError("ingestion lands with the first end-to-end slice")
