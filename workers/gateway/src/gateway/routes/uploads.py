"""Direct uploads and downloads: presigned R2 URLs, so large files never pass through a Worker.

``POST /v1/uploads`` declares a file (name, type, size, SHA-256) and answers with a pending document
and a presigned ``PUT`` URL whose signature binds the size and type (:mod:`edgerag.presign`);
``POST /v1/documents/{id}/complete`` checks what arrived and queues it (:mod:`edgerag.direct_uploads`);
``GET /v1/documents/{id}/download`` answers with a presigned ``GET`` URL of the original file.

Configuration (:class:`DirectUploadSettings`): R2's S3 endpoint (``https://<account>.r2.cloudflarestorage
.com``), the bucket the ``FILES`` binding names, and an R2 API token's access key pair (the secret is a
Worker secret). Unset, these routes answer 503 saying so; locally the dev stack fills them in.

Refused at declaration, before any URL is signed: a type no extractor handles (415), a size over
``MAX_DIRECT_UPLOAD_BYTES`` (413). Bytes the tenant already has (same SHA-256) answer 200 with that
document and no URL, unless ``?allow_duplicate=true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from edgerag.budgets import admit_storage
from edgerag.direct_uploads import PendingUploadStore, complete_upload
from edgerag.extract import UnsupportedContentType, default_registry
from edgerag.ids import new_id
from edgerag.presign import DEFAULT_EXPIRES, MAX_EXPIRES, S3Credentials, object_url, presign
from edgerag.problems import PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from edgerag.settings import load_settings, positive_int, var
from edgerag.store.documents import DocumentStore
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import READER, WRITER, Clock, get_clock, get_env
from gateway.openapi import problems
from gateway.routes.documents import _DOCUMENT_ID_PARAM, Document, UploadAccepted
from gateway.uploads import Metadata

__all__ = ["DirectUploadSettings", "router"]

router = APIRouter(tags=["uploads"])


def _expiry(text: str) -> int:
    value = positive_int(text)
    if value > MAX_EXPIRES:
        raise ValueError(f"must be at most {MAX_EXPIRES} seconds (7 days)")
    return value


@dataclass(frozen=True)
class DirectUploadSettings:
    endpoint: str = var("R2_S3_ENDPOINT", str, "")
    bucket: str = var("R2_BUCKET", str, "")
    access_key_id: str = var("R2_ACCESS_KEY_ID", str, "")
    secret_access_key: str = var("R2_SECRET_ACCESS_KEY", str, "")  # a secret: wrangler secret put
    max_bytes: int = var("MAX_DIRECT_UPLOAD_BYTES", positive_int, 50 * 1024 * 1024)
    upload_expires: int = var("UPLOAD_URL_EXPIRES", _expiry, DEFAULT_EXPIRES)
    download_expires: int = var("DOWNLOAD_URL_EXPIRES", _expiry, 300)
    # How long after its URL expired a pending upload is kept (it may still be completed meanwhile).
    pending_grace: int = var("PENDING_UPLOAD_GRACE", int, 3600)

    def __repr__(self) -> str:  # never the secret
        return f"DirectUploadSettings(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    def credentials(self) -> S3Credentials:
        missing = [
            name
            for name, value in (
                ("R2_S3_ENDPOINT", self.endpoint),
                ("R2_BUCKET", self.bucket),
                ("R2_ACCESS_KEY_ID", self.access_key_id),
                ("R2_SECRET_ACCESS_KEY", self.secret_access_key),
            )
            if not value
        ]
        if missing:
            raise ServiceUnavailable(
                f"direct uploads are not configured on this deployment (missing {', '.join(missing)}); "
                "upload through POST /v1/documents instead"
            )
        return S3Credentials(self.access_key_id, self.secret_access_key)


async def get_upload_settings(env: Any = Depends(get_env)) -> DirectUploadSettings:
    return load_settings(DirectUploadSettings, env)


def _now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _known_types(schema: dict[str, Any]) -> None:
    # Filled in when the OpenAPI schema is generated (not at import): the registry's types, so clients
    # and schema fuzzers know which declarations can succeed. A charset parameter is accepted too.
    schema["enum"] = sorted(default_registry().content_types)
    schema.pop("pattern", None)


class UploadRequest(BaseModel):
    """The file about to be uploaded, as the client knows it."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=255, description="e.g. report.pdf")
    content_type: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+(?: *; *[!-~]+)*$",
        description="the Content-Type the PUT will send (signed: send exactly this value); one the "
        "extractors handle, optionally with '; charset=...' for text",
        json_schema_extra=_known_types,
    )
    size_bytes: int = Field(ge=1, description="exact size: the PUT's Content-Length (signed)")
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$", description="SHA-256 of the file, hex")
    title: str | None = Field(None, min_length=1, max_length=500, description="defaults to the file name")
    metadata: Metadata = Field(default_factory=dict, description="up to 32 client-chosen key/value pairs")


class PendingDocument(BaseModel):
    id: str = Field(description="the document's id once completed")
    title: str
    filename: str | None
    content_type: str = Field(description="what the text will be extracted as")
    size_bytes: int
    sha256: str
    status: Literal["pending"] = Field(description="pending until POST .../complete")
    metadata: dict[str, Any]
    created_at: str
    expires_at: str = Field(description="when the upload URL stops working")


class PresignedTarget(BaseModel):
    url: str = Field(description="presigned R2 URL; its query string is the credential")
    method: Literal["PUT", "GET"]
    headers: dict[str, str] = Field(description="send exactly these headers (they are signed)")
    expires_at: str


class UploadCreated(BaseModel):
    document: PendingDocument | Document = Field(
        description="the pending document, or (duplicate) the tenant's existing copy of these bytes"
    )
    upload: PresignedTarget | None = Field(description="where to PUT the file (null for a duplicate)")
    complete_url: str | None = Field(description="POST here once the PUT succeeded")
    duplicate: bool


@router.post(
    "/v1/uploads",
    status_code=201,
    responses={
        200: {"model": UploadCreated, "description": "A duplicate: the existing document, no URL"},
        **problems(401, 402, 403, 413, 415, 422, 429, 503),
    },
)
async def create_upload(
    body: UploadRequest,
    response: Response,
    allow_duplicate: bool = Query(False, description="sign a URL even if the tenant has these bytes"),
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
    settings: DirectUploadSettings = Depends(get_upload_settings),
    clock: Clock = Depends(get_clock),
) -> UploadCreated:
    """Declare a file and get a presigned PUT URL (valid UPLOAD_URL_EXPIRES seconds, 600 by default)."""
    credentials = settings.credentials()
    if body.size_bytes > settings.max_bytes:
        raise PayloadTooLarge(
            f"the file is {body.size_bytes} bytes; direct uploads take at most {settings.max_bytes} bytes"
        )
    try:
        resolved = default_registry().resolve(body.content_type, body.filename)
    except UnsupportedContentType as exc:
        raise UnsupportedMediaType(
            f"cannot ingest {exc.content_type or 'an untyped file'}; supported: {', '.join(exc.supported)}"
        ) from exc
    charset = body.content_type.partition(";")[2].strip()
    stored_type = f"{resolved}; {charset}" if charset.lower().startswith("charset=") else resolved
    sha256 = body.sha256.lower()
    tenant = principal.tenant_id
    if not allow_duplicate:
        existing = await DocumentStore(env.DB).find_duplicate(tenant, sha256)
        if existing is not None:
            response.status_code = 200
            return UploadCreated(
                document=Document.of(existing), upload=None, complete_url=None, duplicate=True
            )
    # The declared upload holds its place (a document and its size) until completed or expired.
    await admit_storage(env.DB, tenant, documents=1, size_bytes=body.size_bytes)
    now = _now(clock)
    document_id = new_id("doc")
    headers = {"Content-Type": body.content_type, "Content-Length": str(body.size_bytes)}
    pending = await PendingUploadStore(env.DB).create(
        document_id=document_id,
        tenant_id=tenant,
        title=(body.title or body.filename).strip()[:500] or "untitled",
        filename=body.filename,
        content_type=stored_type,
        signed_type=body.content_type,
        size_bytes=body.size_bytes,
        sha256=sha256,
        metadata=dict(body.metadata),
        now=now,
        expires_at=now + timedelta(seconds=settings.upload_expires),
    )
    signed = presign(
        "PUT",
        object_url(settings.endpoint, settings.bucket, pending.r2_key),
        credentials,
        now=now,
        expires_in=settings.upload_expires,
        headers=headers,
    )
    return UploadCreated(
        document=PendingDocument.model_validate(pending.to_public()),
        upload=PresignedTarget(
            url=signed.url, method="PUT", headers=signed.headers, expires_at=_iso(signed.expires_at)
        ),
        complete_url=f"/v1/documents/{document_id}/complete",
        duplicate=False,
    )


@router.post(
    "/v1/documents/{document_id:document_id}/complete",
    status_code=202,
    responses={
        200: {"model": UploadAccepted, "description": "Completed before, or a duplicate"},
        **problems(401, 402, 403, 404, 409, 422, 429, 503),
    },
)
async def complete(
    response: Response,
    document_id: str = _DOCUMENT_ID_PARAM,
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
) -> UploadAccepted:
    """Check the uploaded file (present, declared size and SHA-256) and queue it for ingestion.

    409: nothing uploaded yet. 422: the wrong bytes (the object is deleted; PUT again while the URL
    lasts). 200: completed already, or the tenant already had these bytes (``duplicate``). 402: the
    tenant is over its storage limits (lowered since the upload was declared, which counted it); the
    upload stays pending until it expires, so it can be completed once there is room again.
    """
    await admit_storage(env.DB, principal.tenant_id, documents=0, size_bytes=0)
    stored = await complete_upload(env.DB, env.FILES, env.INGEST_QUEUE, principal.tenant_id, document_id)
    if stored.message is None:
        response.status_code = 200
    return UploadAccepted(
        document=Document.of(stored.record),
        status_url=f"/v1/documents/{stored.record.id}",
        duplicate=stored.message is None and stored.record.id != document_id,
    )


def _disposition(filename: str | None) -> str:
    name = (filename or "document").replace("\\", "_").replace('"', "_")
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/v1/documents/{document_id:document_id}/download", responses=problems(401, 403, 404, 429, 503))
async def download(
    document_id: str = _DOCUMENT_ID_PARAM,
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
    settings: DirectUploadSettings = Depends(get_upload_settings),
    clock: Clock = Depends(get_clock),
) -> PresignedTarget:
    """A presigned GET URL of the document's original file (valid DOWNLOAD_URL_EXPIRES seconds)."""
    credentials = settings.credentials()
    record = await DocumentStore(env.DB).get(principal.tenant_id, document_id)
    signed = presign(
        "GET",
        object_url(settings.endpoint, settings.bucket, record.r2_key),
        credentials,
        now=_now(clock),
        expires_in=settings.download_expires,
        query={"response-content-disposition": _disposition(record.filename)},
    )
    return PresignedTarget(url=signed.url, method="GET", headers={}, expires_at=_iso(signed.expires_at))
