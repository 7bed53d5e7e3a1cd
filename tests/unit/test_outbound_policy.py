"""The local fetch honours EDGERAG_LOCAL_OUTBOUND: loopback only in the test suite, any host by default."""

from __future__ import annotations

import pytest
from edgerag_local.sdk import OUTBOUND_ENV, check_outbound, fetch


@pytest.mark.parametrize(
    "url",
    ["http://example.com/", "https://203.0.113.9/x", "http://10.0.0.1/", "http://[2001:db8::1]/", "http://2130706433/"],
)
async def test_the_suite_cannot_reach_a_non_loopback_host(url: str) -> None:
    with pytest.raises(OSError, match="limited to loopback"):
        await fetch(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost/", "http://[::1]:8/", "http://127.5.0.1/"])
def test_loopback_addresses_pass(url: str) -> None:
    check_outbound(url)


def test_the_default_allows_every_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTBOUND_ENV)
    check_outbound("https://example.com/")


def test_an_unknown_mode_is_refused_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTBOUND_ENV, "none")
    with pytest.raises(ValueError, match="must be 'any' or 'loopback'"):
        check_outbound("http://127.0.0.1/")
