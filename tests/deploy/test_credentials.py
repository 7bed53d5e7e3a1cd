"""A missing, wrong or under-privileged token fails deploy and drift before any change, and is never shown."""

from __future__ import annotations

import pytest
from edgerag_ops.cloudflare import CloudflareClient, Credentials, CredentialsError

from .conftest import ACCOUNT, TOKEN, World

OTHER_ACCOUNT = "fedcba9876543210fedcba9876543210"


def _only_reads(world: World) -> None:
    writes = [call for call in world.api.router.calls if not call.startswith("GET ")]
    assert writes == []


def test_missing_token_variable_fails_before_any_request(world: World) -> None:
    world.add_tenant("alpha", token_env="ALPHA_CLOUDFLARE_API_TOKEN")
    code, out = world.cli("deploy-one", "alpha")
    assert code == 1
    assert "ALPHA_CLOUDFLARE_API_TOKEN" in out and "not set" in out
    assert world.api.router.calls == []


def test_wrong_token_fails_before_any_change(world: World) -> None:
    world.add_tenant("alpha")
    wrong = "wr0ng-t0ken-that-must-not-be-printed-0001"
    code, out = world.cli("deploy-one", "alpha", environ={**world.environ, "CLOUDFLARE_API_TOKEN": wrong})
    assert code == 1
    assert "CLOUDFLARE_API_TOKEN was rejected" in out
    assert wrong not in out and TOKEN not in out
    _only_reads(world)
    assert world.api.state.account(ACCOUNT)["scripts"] == {} and world.api.state.account(ACCOUNT)["d1"] == {}


def test_token_for_another_account_fails_before_any_change(world: World) -> None:
    world.api.add_token("other-account-token-0002", OTHER_ACCOUNT)
    world.add_tenant("alpha")
    code, out = world.cli(
        "deploy-one", "alpha", environ={**world.environ, "CLOUDFLARE_API_TOKEN": "other-account-token-0002"}
    )
    assert code == 1
    assert f"cannot access account {ACCOUNT}" in out
    _only_reads(world)


def test_drift_with_a_bad_token_exits_2(world: World) -> None:
    world.add_tenant("alpha")
    code, out = world.cli("drift", "alpha", environ={**world.environ, "CLOUDFLARE_API_TOKEN": "nope-0003"})
    assert code == 2
    assert "alpha (dev): error" in out and "nope-0003" not in out


def test_client_verify_accepts_the_right_token(world: World) -> None:
    with CloudflareClient(
        Credentials(ACCOUNT, "CLOUDFLARE_API_TOKEN", TOKEN), base_url=world.api.base_url
    ) as c:
        c.verify()
        assert TOKEN not in repr(c) and TOKEN not in repr(c.credentials)


def test_client_verify_rejects_a_revoked_token(world: World) -> None:
    world.api.state.data["tokens"] = {}
    with CloudflareClient(Credentials(ACCOUNT, "X_TOKEN", TOKEN), base_url=world.api.base_url) as c:
        with pytest.raises(CredentialsError, match="X_TOKEN was rejected") as info:
            c.verify()
    assert TOKEN not in str(info.value)
