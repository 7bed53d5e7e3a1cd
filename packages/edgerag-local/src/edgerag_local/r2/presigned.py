"""The local R2 emulator's HTTP face: presigned S3 ``PUT``/``GET``/``HEAD`` URLs on loopback.

At the edge a client uploads straight to R2's S3 endpoint with a URL the gateway signed
(:mod:`edgerag.presign`). :class:`PresignedR2` is that endpoint for the local buckets: an ASGI app
(path-style, ``<prefix>/<bucket>/<key>``) that checks a request as S3/R2 do and answers with S3's
XML errors and statuses:

====================================  ======  =============================================
what is wrong                         status  ``<Code>``
====================================  ======  =============================================
no signature (anonymous)              403     AccessDenied
malformed auth parameters             400     AuthorizationQueryParametersError
unknown access key                    403     InvalidAccessKeyId
signature does not match (tampered    403     SignatureDoesNotMatch
URL, other Content-Length or -Type)
past X-Amz-Date + X-Amz-Expires       403     AccessDenied ("Request has expired")
PUT without Content-Length            411     MissingContentLength
body shorter than its Content-Length  400     IncompleteBody
object over the bucket's size limit   400     EntityTooLarge
unknown bucket / key                  404     NoSuchBucket / NoSuchKey
other methods                         405     MethodNotAllowed
====================================  ======  =============================================

A signed URL may be used again until it expires (as with S3); only ``UNSIGNED-PAYLOAD`` query
authentication is served (no ``Authorization`` header signing, no multipart uploads). GET honours
the signed ``response-content-disposition`` and ``response-content-type`` overrides.

:func:`serve_app` mounts it beside the gateway under :data:`R2_PREFIX` on the same server, which is
how ``edgerag dev`` serves it (``R2_S3_ENDPOINT=http://127.0.0.1:8787/r2``). A PUT body is held in
memory once before it is stored: this is a local emulator, not the edge path.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from edgerag.presign import (
    ALGORITHM,
    MAX_EXPIRES,
    S3Credentials,
    canonical_request,
    signature,
    string_to_sign,
)

from edgerag_local.r2 import LocalR2Bucket

__all__ = ["R2_PREFIX", "PresignedR2"]

R2_PREFIX = "/r2"
_REGIONS = ("auto", "us-east-1", "")  # what R2 accepts as the credential scope's region
ASGI = Callable[..., Any]


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def xml(self, resource: str) -> bytes:
        fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.extra.items())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{fields}"
            f"<Resource>{escape(resource)}</Resource></Error>"
        ).encode()


def _bad_auth(message: str) -> S3Error:
    return S3Error(400, "AuthorizationQueryParametersError", message)


class PresignedR2:
    """S3 path-style access to ``buckets`` for requests signed with one of ``keys`` (id -> secret)."""

    def __init__(
        self,
        buckets: Mapping[str, LocalR2Bucket],
        keys: Mapping[str, str],
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._buckets = dict(buckets)
        self._keys = dict(keys)
        self._prefix = prefix.rstrip("/")
        self._clock = clock

    async def __call__(self, scope: dict[str, Any], receive: ASGI, send: ASGI) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        try:
            status, headers, body = await self._handle(scope, receive)
        except S3Error as exc:
            status, body = exc.status, exc.xml(path)
            headers = [(b"content-type", b"application/xml")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    async def _handle(
        self, scope: dict[str, Any], receive: ASGI
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        method = scope["method"]
        if method not in ("GET", "HEAD", "PUT"):
            raise S3Error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        self._authenticate(method, scope["path"], query, headers)
        bucket_name, _, key = scope["path"][len(self._prefix) :].lstrip("/").partition("/")
        bucket = self._buckets.get(bucket_name)
        if bucket is None:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist.")
        if not key:
            raise S3Error(405, "MethodNotAllowed", "Only object requests are served here.")
        if method == "PUT":
            return await self._put(bucket, key, headers, receive)
        return await self._get(bucket, key, dict(query))

    def _authenticate(
        self, method: str, path: str, query: list[tuple[str, str]], headers: Mapping[str, str]
    ) -> None:
        params = dict(query)
        if "X-Amz-Signature" not in params and "X-Amz-Credential" not in params:
            raise S3Error(403, "AccessDenied", "Access Denied")
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise _bad_auth(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
        try:
            key_id, day, region, service, terminal = params["X-Amz-Credential"].split("/")
            date = params["X-Amz-Date"]
            signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
            signed_headers = params["X-Amz-SignedHeaders"].split(";")
            given = params["X-Amz-Signature"]
        except (KeyError, ValueError) as exc:
            raise _bad_auth(f"Error parsing the query-string authentication parameters: {exc}") from exc
        if service != "s3" or terminal != "aws4_request" or day != date[:8] or region not in _REGIONS:
            raise _bad_auth("Error parsing the X-Amz-Credential parameter")
        if not 1 <= expires <= MAX_EXPIRES:
            raise _bad_auth(f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}")
        if "host" not in signed_headers or signed_headers != sorted(signed_headers):
            raise _bad_auth("X-Amz-SignedHeaders must include host and be sorted")
        secret = self._keys.get(key_id)
        if secret is None:
            raise S3Error(
                403, "InvalidAccessKeyId", "The access key ID you provided does not exist in our records."
            )
        now = datetime.fromtimestamp(self._clock(), UTC)
        if now > signed_at + timedelta(seconds=expires):
            raise S3Error(
                403,
                "AccessDenied",
                "Request has expired",
                **{"X-Amz-Expires": str(expires), "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
            )
        creds = S3Credentials(key_id, secret, region)
        unsigned = [(k, v) for k, v in query if k != "X-Amz-Signature"]
        canonical = canonical_request(method, path, unsigned, headers, signed_headers)  # path: decoded
        to_sign = string_to_sign(date, f"{day}/{region}/s3/aws4_request", canonical)
        if not hmac.compare_digest(signature(creds, date, to_sign), given):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your secret access key and signing method.",
            )

    async def _put(
        self, bucket: LocalR2Bucket, key: str, headers: Mapping[str, str], receive: ASGI
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        declared = headers.get("content-length")
        if declared is None or not declared.isdigit():
            raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        length = int(declared)
        if length > bucket.limits.max_value_bytes:
            raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > length:
                break
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        if received != length:
            raise S3Error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            )
        http: dict[str, str] = {}
        if "content-type" in headers:
            http["contentType"] = headers["content-type"]
        custom = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
        stored = await bucket.put(key, b"".join(chunks), httpMetadata=http, customMetadata=custom)
        return 200, [(b"etag", stored.httpEtag.encode())], b""

    async def _get(
        self, bucket: LocalR2Bucket, key: str, params: Mapping[str, str]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        obj = await bucket.get(key)
        if obj is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        data = await obj.bytes()
        content_type = params.get("response-content-type") or obj.httpMetadata.get(
            "contentType", "application/octet-stream"
        )
        out = [
            (b"content-type", content_type.encode("latin-1")),
            (b"etag", obj.httpEtag.encode()),
            (b"last-modified", obj.uploaded.strftime("%a, %d %b %Y %H:%M:%S GMT").encode()),
        ]
        if "response-content-disposition" in params:
            out.append((b"content-disposition", params["response-content-disposition"].encode("latin-1")))
        return 200, out, data
