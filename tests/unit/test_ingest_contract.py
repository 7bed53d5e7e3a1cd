"""edgerag.contracts.ingest.IngestMessage: round trip through JSON, validation, clear errors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from edgerag.contracts.ingest import IngestMessage, InvalidIngestMessageError
from edgerag.jsdict import AttrDict
from pydantic import ValidationError

SHA = hashlib.sha256(b"hello").hexdigest()


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "tenant_id": "tnt_01jd4q8m2x3y4z5a6b7c8d9e0f",
        "document_id": "doc_01jd4q8m2x3y4z5a6b7c8d9e0f",
        "r2_key": "tenants/tnt_01/documents/doc_01/original",
        "content_type": "text/markdown",
        "sha256": SHA,
        "enqueued_at": "2026-01-02T03:04:05.678Z",
    }
    body.update(changes)
    return body


def test_round_trip_through_json() -> None:
    message = IngestMessage(**_body())
    body = message.to_body()
    assert body == _body()
    assert IngestMessage.from_body(json.loads(json.dumps(body))) == message
    assert IngestMessage.from_body(json.dumps(body)) == message
    assert IngestMessage.from_body(json.dumps(body).encode()) == message


def test_from_body_accepts_binding_results() -> None:
    # Queue bodies arrive as JsDict (a dict subclass) from the SDK, AttrDict locally.
    assert IngestMessage.from_body(AttrDict(_body())).document_id == _body()["document_id"]


def test_version_defaults_to_one_and_other_versions_are_rejected() -> None:
    body = _body()
    del body["v"]
    assert IngestMessage.from_body(body).v == 1
    with pytest.raises(InvalidIngestMessageError, match="v"):
        IngestMessage.from_body(_body(v=2))


def test_messages_are_frozen() -> None:
    message = IngestMessage(**_body())
    with pytest.raises(ValidationError):
        message.tenant_id = "other"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sha256": "ABC"}, "sha256"),
        ({"sha256": SHA.upper()}, "sha256"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"tenant_id": "../other"}, "tenant_id"),
        ({"document_id": "d" * 65}, "document_id"),
        ({"r2_key": "é" * 600}, "r2_key"),  # 600 characters, 1200 bytes
        ({"content_type": "markdown"}, "content_type"),
        ({"enqueued_at": "yesterday"}, "enqueued_at"),
        ({"enqueued_at": "2026-01-02T03:04:05"}, "enqueued_at"),  # no offset
        ({"priority": "high"}, "priority"),  # extra fields are refused
    ],
)
def test_invalid_bodies_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidIngestMessageError) as raised:
        IngestMessage.from_body(_body(**changes))
    assert field in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_errors_never_echo_values() -> None:
    with pytest.raises(InvalidIngestMessageError) as raised:
        IngestMessage.from_body(_body(sha256="top-secret-value"))
    assert "top-secret-value" not in str(raised.value)


@pytest.mark.parametrize("body", [None, 42, ["a"], "not json", b"\xff"])
def test_non_mappings_are_invalid(body: Any) -> None:
    with pytest.raises(InvalidIngestMessageError):
        IngestMessage.from_body(body)


def test_the_body_fits_a_queue_message() -> None:
    body = _body(r2_key="k" * 1024, tenant_id="t" * 64, document_id="d" * 64)
    assert len(json.dumps(IngestMessage.from_body(body).to_body()).encode()) < 128 * 1024


@pytest.mark.parametrize(
    "content_type", ["text/plain; charset=shift_jis", "text/markdown; charset=iso-8859-1"]
)
def test_content_type_may_carry_the_declared_charset(content_type: str) -> None:
    assert IngestMessage.from_body(_body(content_type=content_type)).content_type == content_type


@pytest.mark.parametrize(
    "content_type",
    ["text/plain; boundary=x", "text/plain; charset=", "text/plain;charset=utf-8", "text/plain; charset=a b"],
)
def test_content_type_parameters_other_than_a_charset_are_rejected(content_type: str) -> None:
    with pytest.raises(InvalidIngestMessageError, match="content_type"):
        IngestMessage.from_body(_body(content_type=content_type))
