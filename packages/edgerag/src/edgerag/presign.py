"""Presigned S3 URLs (AWS Signature Version 4, query-string authentication) for R2's S3 API.

The gateway hands these to clients so that a file goes straight to R2 (``PUT``) or comes straight back
(``GET``) without passing through a Worker. :func:`presign` signs a URL; the pieces it is made of
(:func:`canonical_request`, :func:`string_to_sign`, :func:`signature`) are public so that a verifier
(the local R2 emulator's HTTP face, :mod:`edgerag_local.r2.presigned`) recomputes exactly what S3 does.

What is signed: the method, the path, every query parameter but ``X-Amz-Signature``, and the headers
named in ``X-Amz-SignedHeaders`` — always ``host``, plus whatever the caller binds (the gateway binds
``content-length`` and ``content-type``, so a PUT of another size or type fails with
``SignatureDoesNotMatch``). The payload is ``UNSIGNED-PAYLOAD``: the client need not hash the body
first; the gateway checks the stored object's size and SHA-256 when the upload is completed.

Pure stdlib (``hmac``, ``hashlib``), no I/O, no clock: the caller passes ``now``. Pyodide-safe.
Tested against botocore's presigner and AWS's published example (tests/unit/test_presign.py).

To sign another kind of request: pass its method and the headers to bind; for temporary
credentials, add ``X-Amz-Security-Token`` to the query before signing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "ALGORITHM",
    "DEFAULT_EXPIRES",
    "MAX_EXPIRES",
    "UNSIGNED_PAYLOAD",
    "PresignedRequest",
    "S3Credentials",
    "amz_date",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "credential_scope",
    "object_url",
    "presign",
    "signature",
    "string_to_sign",
    "uri_encode",
]

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_EXPIRES = 600  # ten minutes
MAX_EXPIRES = 7 * 24 * 3600  # S3's (and R2's) ceiling for X-Amz-Expires
_UNRESERVED = "-_.~"  # with letters and digits: RFC 3986 unreserved, never encoded by SigV4


@dataclass(frozen=True)
class S3Credentials:
    """An access key for the S3 API. R2's region is ``auto``; its service name is ``s3``."""

    access_key_id: str
    secret_access_key: str
    region: str = "auto"
    service: str = "s3"

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"S3Credentials({self.access_key_id!r}, region={self.region!r})"


@dataclass(frozen=True)
class PresignedRequest:
    """A signed URL and the headers the client must send with it, exactly as given."""

    method: str
    url: str
    headers: dict[str, str]
    expires_at: datetime


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """SigV4's UriEncode: every byte but the unreserved ones percent-encoded, upper-case hex."""
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def amz_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def credential_scope(date: str, credentials: S3Credentials) -> str:
    """``<yyyymmdd>/<region>/<service>/aws4_request`` for an ``X-Amz-Date`` value."""
    return f"{date[:8]}/{credentials.region}/{credentials.service}/aws4_request"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Parameters (decoded) encoded and sorted by name, then value, as SigV4 requires."""
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> str:
    """``name:value\\n`` per signed header: names lower-case, values trimmed, inner spaces folded."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return "".join(f"{name}:{' '.join(lowered.get(name, '').split())}\n" for name in signed)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    payload_hash: str = UNSIGNED_PAYLOAD,
) -> str:
    """The canonical request. ``path`` is decoded; S3 encodes it once (no double encoding)."""
    signed = list(signed_headers)
    return "\n".join(
        [
            method.upper(),
            uri_encode(path or "/", keep_slash=True),
            canonical_query(query),
            canonical_headers(headers, signed),
            ";".join(signed),
            payload_hash,
        ]
    )


def string_to_sign(date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date}\n{scope}\n{digest}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signature(credentials: S3Credentials, date: str, to_sign: str) -> str:
    """Hex HMAC of ``to_sign`` under the key derived for the day, region and service."""
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), date[:8])
    key = _hmac(key, credentials.region)
    key = _hmac(key, credentials.service)
    key = _hmac(key, "aws4_request")
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """The path-style URL of ``key`` in ``bucket`` (R2: ``https://<account>.r2.cloudflarestorage.com``)."""
    return f"{endpoint.rstrip('/')}/{uri_encode(bucket)}/{uri_encode(key, keep_slash=True)}"


def presign(
    method: str,
    url: str,
    credentials: S3Credentials,
    *,
    now: datetime,
    expires_in: int = DEFAULT_EXPIRES,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> PresignedRequest:
    """Sign ``method url`` for ``expires_in`` seconds from ``now``, binding ``headers`` (and Host).

    ``url`` is an object URL as :func:`object_url` makes it (its path percent-encoded); ``query`` adds
    parameters that are signed too (e.g. ``response-content-disposition`` on a GET).
    """
    if not 1 <= expires_in <= MAX_EXPIRES:
        raise ValueError(f"expires_in must be 1..{MAX_EXPIRES} seconds, not {expires_in}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError("pass query parameters through query=, not in the URL")
    bound = {k.lower(): str(v) for k, v in (headers or {}).items()}
    bound["host"] = parts.netloc.rsplit("@", 1)[-1].lower()
    signed = sorted(bound)
    signed_at = now.astimezone(UTC).replace(microsecond=0)
    date = amz_date(signed_at)
    params = {
        **(query or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key_id}/{credential_scope(date, credentials)}",
        "X-Amz-Date": date,
        "X-Amz-Expires": str(expires_in),
        "X-Amz-SignedHeaders": ";".join(signed),
    }
    canonical = canonical_request(method, unquote(parts.path), params.items(), bound, signed)
    sig = signature(credentials, date, string_to_sign(date, credential_scope(date, credentials), canonical))
    query_text = canonical_query([*params.items(), ("X-Amz-Signature", sig)])
    send = {k: v for k, v in (headers or {}).items() if k.lower() != "host"}
    return PresignedRequest(
        method=method.upper(),
        url=f"{parts.scheme}://{parts.netloc}{parts.path or '/'}?{query_text}",
        headers=send,
        expires_at=signed_at + timedelta(seconds=expires_in),
    )
