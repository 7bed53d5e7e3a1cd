"""edgerag.url_policy: which URLs a URL source may fetch, decided without resolving anything."""

from __future__ import annotations

import pytest
from edgerag.url_policy import UrlRefused, check_url, parse_allow_hosts


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://example.com:8080/a/b?c=d#e",
        "https://93.184.216.34/",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",
        "https://sub.example.co.uk/page.html",
    ],
)
def test_public_http_urls_pass(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8080/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::1]/", "loopback"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
        ("http://[2002:a00:1::]/", "private"),  # 6to4 of 10.0.0.1
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "reserved"),  # carrier-grade NAT: not global
        # Numeric spellings that fetch implementations read as addresses.
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://017700000001/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0251.0376.0251.0376/", "link-local"),  # 169.254.169.254 in octal
        ("http://10.0.0.1./", "private"),  # trailing dot
        # Names.
        ("http://localhost/", "internal host name"),
        ("http://LOCALHOST:8000/", "internal host name"),
        ("http://api.localhost/", "internal host name"),
        ("http://metadata.google.internal/computeMetadata/v1/", "internal host name"),
        ("http://printer.local/", "internal host name"),
        ("http://intranet/", "internal host name"),
        # Shapes.
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("ftp://example.com/", "only http and https"),
        ("example.com/page", "only http and https"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///path", "no host"),
        ("http://example.com:99999/", "cannot be parsed"),
        ("http://exa mple.com/", "spaces or control"),
        ("http://1.2.3.4.5/", "not a valid IPv4"),
        ("http://256.1.1.1/", "not a valid IPv4"),
        ("http://example.123/", "not a valid IPv4"),
        ("https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_refused_urls_name_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        check_url(url)


def test_allowed_hosts_pass_the_address_check_and_nothing_else() -> None:
    allow = parse_allow_hosts(" 127.0.0.1 , LocalHost:8080,[::1]")
    assert allow == frozenset({"127.0.0.1", "localhost", "::1"})
    assert check_url("http://127.0.0.1:5000/page", allow)
    assert check_url("http://localhost/x", allow)
    assert check_url("http://[::1]:9/", allow)
    # Only the listed hosts: another loopback spelling is still refused, and so is another scheme.
    with pytest.raises(UrlRefused, match="loopback"):
        check_url("http://127.0.0.2/", allow)
    with pytest.raises(UrlRefused, match="only http and https"):
        check_url("ftp://127.0.0.1/", allow)


def test_an_empty_allow_list_allows_nothing_extra() -> None:
    assert parse_allow_hosts("") == frozenset()
    with pytest.raises(UrlRefused):
        check_url("http://127.0.0.1/", parse_allow_hosts(""))
