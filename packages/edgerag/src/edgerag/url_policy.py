"""Which URLs a URL source may point at: http(s) to a public address, checked without resolving.

:func:`check_url` is called by the gateway when a URL document is created (a refusal is a 422 before
anything is stored or sent) and by :mod:`edgerag.url_fetch` before every request, redirects
included, so a public page cannot bounce the fetcher to an internal one.

Refused: schemes other than ``http``/``https``; credentials in the URL; hosts that are IP literals
in private, loopback, link-local (which holds the cloud metadata service, 169.254.169.254),
unique-local, multicast, reserved or unspecified ranges, IPv4-mapped or 6to4/NAT64 forms of those,
and the numeric spellings URL parsers accept for them (``http://2130706433/``, ``http://0x7f.1/``);
names that are obviously internal (``localhost`` and ``*.localhost``, ``*.local``, ``*.internal``,
``metadata.google.internal`` and friends).

What this cannot do is resolve names: a public name whose DNS answers a private address (or changes
its answer between check and fetch, "DNS rebinding") passes here. At the edge that is covered by the
platform: a Worker's ``fetch`` reaches the public internet only, never the private networks or
link-local addresses of the machine it runs on. Outside Workers, put an egress proxy in front.

``allow_hosts`` (the ``URL_FETCH_ALLOW_HOSTS`` var: comma-separated host names or IP literals,
exact match, port ignored) lets listed hosts through the address check; tests set it to
``127.0.0.1`` to serve pages from loopback. To refuse more names, extend :data:`INTERNAL_NAMES` or
:data:`INTERNAL_SUFFIXES`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = [
    "INTERNAL_NAMES",
    "INTERNAL_SUFFIXES",
    "MAX_URL_LENGTH",
    "UrlRefused",
    "check_url",
    "parse_allow_hosts",
]

MAX_URL_LENGTH = 2048
INTERNAL_NAMES = frozenset(
    {"localhost", "metadata", "metadata.google.internal", "metadata.azure.com", "instance-data"}
)
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):  # noqa: N818 - reads as the condition, like the extractors' errors
    """The URL may not be fetched; the message says why (safe to show: it names no secret)."""


def parse_allow_hosts(text: str) -> frozenset[str]:
    """``"127.0.0.1, example.test"`` -> the set of hosts the address check lets through."""
    return frozenset(_normal_host(part) for part in text.split(",") if part.strip())


def check_url(url: str, allow_hosts: Iterable[str] = ()) -> str:
    """``url`` if it may be fetched, else :class:`UrlRefused` naming the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UrlRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise UrlRefused(f"the URL cannot be parsed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs can be fetched, not {parts.scheme or 'no scheme'!r}")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the URL must not carry credentials (user:password@)")
    host = _normal_host(parts.hostname or "")
    if not host:
        raise UrlRefused("the URL has no host")
    if host in frozenset(_normal_host(h) for h in allow_hosts):
        return url
    address = _ip_literal(host)
    if address is not None:
        reason = _non_public(address)
        if reason:
            raise UrlRefused(f"{host} is {reason}: only public addresses can be fetched")
        return url
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES) or "." not in host:
        raise UrlRefused(f"{host} is an internal host name: only public addresses can be fetched")
    return url


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and "]" in host:  # "[::1]:8080" as a user may write it in the allow list
        return host[1 : host.index("]")]
    if host.count(":") == 1:  # "127.0.0.1:8080": the allow list ignores ports
        host = host.split(":", 1)[0]
    return host


def _ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` denotes if it is an IP literal, in any spelling a URL parser accepts."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # IPv6 zone ids ("fe80::1%eth0") dropped
    except ValueError:
        pass
    return _whatwg_ipv4(host)


def _whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The WHATWG URL standard's IPv4 parser: 1-4 parts, each decimal, 0x-hex or 0-octal, the last
    filling the remaining bytes (``127.1``, ``0x7f000001``, ``017700000001``). Browsers and fetch
    implementations read these hosts as addresses, so the check must too. A host whose last label is
    numeric but does not parse is refused as malformed (the standard fails it as well)."""
    labels = host.split(".")
    if labels and labels[-1] == "":
        labels.pop()
    if not labels or not _numeric(labels[-1]):
        return None
    if len(labels) > 4:
        raise UrlRefused(f"{host} is not a valid IPv4 address")
    numbers: list[int] = []
    for label in labels:
        value = _ipv4_number(label)
        if value is None:
            raise UrlRefused(f"{host} is not a valid IPv4 address")
        numbers.append(value)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise UrlRefused(f"{host} is not a valid IPv4 address")
    value = last
    for index, n in enumerate(head):
        value += n * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _numeric(label: str) -> bool:
    if label.isdigit() and label.isascii():
        return True
    return label[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in label[2:])


def _ipv4_number(label: str) -> int | None:
    if not label:
        return None
    try:
        if label[:2] in ("0x", "0X"):
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10) if label.isascii() and label.isdigit() else None
    except ValueError:
        return None


def _non_public(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _non_public(embedded)
        if address in ipaddress.IPv6Network("fc00::/7"):
            return "a unique-local address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (the cloud metadata service lives there)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None
