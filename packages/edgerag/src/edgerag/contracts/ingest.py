"""The ingest queue message: gateway -> ingest, one per uploaded (or re-uploaded) document.

The gateway builds an :class:`IngestMessage` and sends :meth:`~IngestMessage.to_body` (a JSON-able
dict: the queue carries JSON, never Python objects); the consumer rebuilds it with
:meth:`~IngestMessage.from_body`, which validates everything and raises :class:`InvalidIngestMessageError`
for a malformed body (the consumer acks those: retrying cannot fix them).

``content_type`` is the extractable type and, when the upload declared one, its charset
(``text/plain; charset=shift_jis``): the consumer decodes with it.

The message is a pointer, not the payload: the file stays in R2 (queue messages are capped at 128 KB)
and ``sha256`` lets the consumer check it read the bytes the upload stored. It must stay small and
must never carry secrets: queue messages are visible in the dashboard and in dead-letter queues.

``request_id`` (optional) is the id of the request that queued the message, so the consumer's log
lines carry the same id as the upload's (:mod:`edgerag.observability`); a message built outside a
request has none and the consumer mints one.

Versioning: ``v`` is ``1``. A change a v1 consumer could not read means a new model with ``v: 2``
and a consumer that accepts both until every v1 message has drained; adding fields to v1 would be
rejected by consumers still running (``extra="forbid"``), so deploy consumers before producers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgerag.observability.context import current_request_id

__all__ = ["IngestMessage", "InvalidIngestMessageError"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# type/subtype, optionally with the one parameter extraction needs: "text/plain; charset=shift_jis".
_MEDIA_TYPE = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*(?:; charset=[a-z0-9][a-z0-9_.:-]*)?$"


class InvalidIngestMessageError(ValueError):
    """The body is not a valid ingest message; the message names the failing fields, not values."""


class IngestMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    v: Literal[1] = 1
    tenant_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    document_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    r2_key: str = Field(min_length=1, max_length=1024)  # R2's key limit is 1024 bytes
    content_type: str = Field(min_length=3, max_length=127, pattern=_MEDIA_TYPE)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    enqueued_at: str = Field(description="ISO-8601 with a UTC offset, e.g. 2026-01-02T03:04:05.678Z")
    request_id: str | None = Field(
        default_factory=current_request_id,
        max_length=64,
        pattern=_ID,
        description="the request that queued it (the current one when built): the consumer logs under it",
    )

    @field_validator("r2_key")
    @classmethod
    def _key_fits_r2(cls, value: str) -> str:
        if len(value.encode("utf-8")) > 1024:
            raise ValueError("R2 keys are at most 1024 bytes")
        return value

    @field_validator("enqueued_at")
    @classmethod
    def _aware_timestamp(cls, value: str) -> str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO-8601 timestamp") from None
        if parsed.tzinfo is None:
            raise ValueError("must carry a UTC offset (e.g. a trailing Z)")
        return value

    def to_body(self) -> dict[str, Any]:
        """The JSON-able dict that crosses the queue (``request_id`` only when there is one)."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_body(cls, body: Any) -> IngestMessage:
        """Validate a queue body (a mapping, or JSON text/bytes)."""
        try:
            if isinstance(body, (str, bytes, bytearray)):
                return cls.model_validate_json(body)
            if not isinstance(body, dict):
                body = dict(body)
            return cls.model_validate(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            names = ", ".join(fields)
            raise InvalidIngestMessageError(f"invalid ingest message: bad or missing {names}") from exc
        except (TypeError, ValueError) as exc:
            kind = type(body).__name__
            raise InvalidIngestMessageError(f"invalid ingest message: {kind} is not a mapping") from exc
