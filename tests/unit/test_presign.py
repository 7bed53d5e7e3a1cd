"""SigV4 presigning (edgerag.presign) against botocore's presigner and AWS's published example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from edgerag.presign import DEFAULT_EXPIRES, S3Credentials, object_url, presign

CREDS = S3Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def _botocore(method: str, url: str, headers: dict[str, str], expires: int = DEFAULT_EXPIRES) -> str:
    request = AWSRequest(method=method, url=url, headers=headers)
    S3SigV4QueryAuth(
        Credentials(CREDS.access_key_id, CREDS.secret_access_key), "s3", "auto", expires=expires
    ).add_auth(request)
    assert request.url is not None
    return request.url


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _signed_at(url: str) -> datetime:
    return datetime.strptime(_query(url)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    ["tenants/t_1/documents/doc_01/original", "a key/with spaces+plus&amp=/ünïcødé~.pdf"],
)
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "https://acct.r2.cloudflarestorage.com"])
def test_put_matches_botocore(key: str, endpoint: str) -> None:
    url = object_url(endpoint, "edgerag-files", key)
    headers = {"Content-Type": "application/pdf", "Content-Length": "52428800"}
    reference = _botocore("PUT", url, headers)
    mine = presign("PUT", url, CREDS, now=_signed_at(reference), headers=headers)
    assert _query(mine.url) == _query(reference)
    assert mine.url.split("?")[0] == reference.split("?")[0]
    assert _query(mine.url)["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    assert mine.headers == headers  # what the client must send, Host aside


def test_get_with_signed_response_override_matches_botocore() -> None:
    url = object_url("http://localhost:8787", "edgerag-files", "tenants/t/documents/d/original")
    disposition = 'attachment; filename="report 2026.pdf"'
    reference = _botocore("GET", f"{url}?response-content-disposition={quote(disposition)}", {}, 300)
    mine = presign(
        "GET",
        url,
        CREDS,
        now=_signed_at(reference),
        expires_in=300,
        query={"response-content-disposition": disposition},
    )
    assert _query(mine.url) == _query(reference)


def test_aws_published_example() -> None:
    """The presigned GET of AWS's "Authenticating Requests: Using Query Parameters" example."""
    creds = S3Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")
    signed = presign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        creds,
        now=datetime(2013, 5, 24, tzinfo=UTC),
        expires_in=86400,
    )
    query = _query(signed.url)
    assert query["X-Amz-Credential"] == "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
    assert query["X-Amz-SignedHeaders"] == "host"
    assert query["X-Amz-Signature"] == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_bound_headers_change_the_signature_and_expiry_is_reported() -> None:
    url = object_url("http://127.0.0.1:9000", "b", "k")
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    a = presign("PUT", url, CREDS, now=now, headers={"content-length": "10", "content-type": "text/plain"})
    b = presign("PUT", url, CREDS, now=now, headers={"content-length": "11", "content-type": "text/plain"})
    c = presign("PUT", url, CREDS, now=now, headers={"content-length": "10", "content-type": "text/html"})
    signatures = {_query(s.url)["X-Amz-Signature"] for s in (a, b, c)}
    assert len(signatures) == 3
    assert a.expires_at == datetime(2026, 1, 2, 3, 14, 5, tzinfo=UTC)  # X-Amz-Date has whole seconds
    assert a.expires_at - timedelta(seconds=DEFAULT_EXPIRES) == _signed_at(a.url)


@pytest.mark.parametrize("expires", [0, -1, 7 * 24 * 3600 + 1])
def test_expiry_out_of_range_is_refused(expires: int) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        presign("GET", "http://h/b/k", CREDS, now=datetime.now(UTC), expires_in=expires)


def test_secret_never_in_repr() -> None:
    assert CREDS.secret_access_key not in repr(CREDS)
