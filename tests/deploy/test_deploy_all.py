"""deploy-all: every tenant, in parallel, carrying on past broken ones, with progress and a summary."""

from __future__ import annotations

import tomllib

import pytest

from .conftest import ACCOUNT, REPO, World, assert_no_token_leak, require_wrangler, tenant_text

pytestmark = pytest.mark.wrangler


def test_deploy_all_deploys_the_good_tenants_and_reports_the_broken_ones(world: World) -> None:
    require_wrangler()
    world.add_tenant("alpha")
    world.add_tenant("beta")  # its gateway upload will be refused midway
    world.add_tenant("gamma", token_env="GAMMA_CLOUDFLARE_API_TOKEN")  # token variable not set
    world.add_tenant("broken", text=tenant_text("broken").replace("dimensions = 768", "dimensions = 7"))
    world.api.inject.fail_uploads(ACCOUNT, "beta-edgerag-gateway-dev")

    code, out = world.cli("deploy-all", "--parallel", "2")

    assert code == 1
    summary = out[out.rindex("TENANT  ") :].splitlines()
    status = {line.split()[0]: line.split()[2] for line in summary[2:-1]}
    assert status == {"alpha": "deployed", "beta": "failed", "broken": "failed", "gamma": "failed"}
    assert summary[-1] == "4 tenant(s): 3 failed"
    # Progress lines as it goes, each tenant's failure explained in full.
    assert "[" in out.splitlines()[0] and "/4]" in out.splitlines()[0]
    assert "broken.toml: resources.vectorize.dimensions" in out
    assert "GAMMA_CLOUDFLARE_API_TOKEN" in out
    assert "failed at deploy beta-edgerag-gateway-dev" in out
    assert "npx wrangler delete beta-edgerag-dedalus-dev" in out  # new workers: delete to undo

    scripts = world.api.state.account(ACCOUNT)["scripts"]
    assert {"alpha-edgerag-gateway-dev", "alpha-edgerag-dedalus-dev", "alpha-edgerag-ingest-dev"} <= set(
        scripts
    )
    assert "beta-edgerag-gateway-dev" not in scripts
    assert not any(name.startswith(("gamma-", "broken-")) for name in scripts)
    assert_no_token_leak(world)

    # Once beta's uploads work again, a second run deploys it and leaves alpha untouched.
    world.api.inject.fail_uploads(ACCOUNT, "beta-edgerag-gateway-dev", fail=False)
    (world.tenants / "broken.toml").unlink()
    (world.tenants / "gamma.toml").unlink()
    code, out = world.cli("deploy-all")
    assert code == 0, out
    assert "alpha: unchanged" in out and "beta: deployed" in out
    code, out = world.cli("drift", "--all")
    assert code == 0, out


def test_deploy_all_skips_tenants_without_the_environment(world: World) -> None:
    world.add_tenant("alpha")  # defines only dev
    code, out = world.cli("deploy-all", "--env", "prod")
    assert code == 0, out
    assert any(line.split()[:3] == ["alpha", "prod", "skipped"] for line in out.splitlines())
    assert world.api.state.account(ACCOUNT)["scripts"] == {}


def test_example_tenants_deploy_to_prod_with_their_custom_domain_and_route(world: World) -> None:
    require_wrangler()
    tokens = {}
    for name in ("acme", "globex"):
        text = (REPO / "tenants" / f"{name}.toml").read_text()
        config = tomllib.loads(text)
        world.add_tenant(name, text=text)
        tokens[config["api_token_env"]] = f"{name}-token-0123456789"
        world.api.add_token(tokens[config["api_token_env"]], config["account_id"])
        world.api.add_zone(config["account_id"], f"{name}.example")  # the domain is set up in the account
    environ = {**world.environ, **tokens}

    code, out = world.cli("deploy-all", "--env", "prod", "--parallel", "2", environ=environ)
    assert code == 0, out
    acme = world.api.state.account(ACCOUNT)["scripts"]["acme-edgerag-gateway"]
    assert [d["hostname"] for d in acme["domains"]] == ["rag.acme.example"]
    globex = world.api.state.account("fedcba9876543210fedcba9876543210")["scripts"]["globex-edgerag-gateway"]
    assert [(r["pattern"], r["zone_name"]) for r in globex["routes"]] == [
        ("api.globex.example/rag/*", "globex.example")
    ]
    code, out = world.cli("drift", "--all", "--env", "prod", environ=environ)
    assert code == 0, out
