"""Every rendered gateway config tells the gateway its rate-limit binding's period (RATE_LIMIT_PERIOD),
equal to the binding's ``simple.period`` for that tenant, so ``Retry-After`` follows the tenant's window
(globex counts 10 s windows, acme 60 s) rather than the repository template's.
"""

from __future__ import annotations

import tomllib

import pytest
from edgerag_ops.render import ResourceIds, Templates, render_all
from edgerag_ops.tenants import Tenant, load_all

from .conftest import REPO

IDS = ResourceIds(d1_database_id="11111111-2222-4333-8444-555555555555", kv_namespace_id="a" * 32)
TENANTS = load_all(REPO / "tenants")
CASES = [(t, env) for t in TENANTS for env in sorted(t.environments)]


@pytest.mark.parametrize("case", CASES, ids=[f"{t.name}-{env}" for t, env in CASES])
def test_rendered_gateway_knows_its_rate_limit_period(case: tuple[Tenant, str]) -> None:
    tenant, env = case
    gateway = tomllib.loads(render_all(Templates.load(REPO), tenant, env, IDS)["gateway"].text)
    (binding,) = gateway["ratelimits"]
    assert binding["simple"]["period"] == tenant.rate_limits.period
    assert gateway["vars"]["RATE_LIMIT_PERIOD"] == str(tenant.rate_limits.period)


def test_the_example_tenants_cover_both_periods() -> None:
    assert {t.rate_limits.period for t in TENANTS} == {10, 60}
