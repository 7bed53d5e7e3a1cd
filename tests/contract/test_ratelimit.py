"""Contract suite for the rate-limiting binding (edgerag.ports.RateLimit).

Runs against every backend in ``LOCAL_BACKENDS`` (Miniflare's limiter counts in wall-clock
windows, which these counting assertions would race; see docs/contract-tests.md). Locally that is
:class:`edgerag_local.ratelimit.LocalRateLimit` with an injected clock. Inside workerd the same
assertions would run in a test worker with a ``[[ratelimits]]`` binding (``simple = {limit = 3,
period = 10}``), called over RPC (``await env.RL_PROBE.limit({"key": ...})``) with a fresh random key
per test so runs do not share counters. There time cannot be moved, so :meth:`Harness.advance`
would wait for the next window; the edge's counters are also eventually consistent within a
location, so the exact-count assertions hold only as upper bounds there (the binding is permissive:
it may allow a few extra calls, never fewer). Config validation mirrors wrangler's and is local.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from edgerag.ports import RateLimit
from edgerag_local.core.clock import ManualClock
from edgerag_local.core.errors import BindingError
from edgerag_local.ratelimit import LocalRateLimit, RateLimitConfigError, RateLimitError, RateLimitNamespace

from tests.contract.conftest import LOCAL_BACKENDS

# Aligned to both periods, so window arithmetic in the tests is easy to read.
NOW = 1_700_000_040.0


@dataclass
class Harness:
    clock: ManualClock
    make: Callable[..., LocalRateLimit]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


@pytest.fixture(params=LOCAL_BACKENDS)
def rl(request: pytest.FixtureRequest) -> Harness:
    if request.param != "local":
        pytest.skip(f"backend {request.param!r} needs a deployed test worker")
    clock = ManualClock(NOW)

    def make(limit: int = 3, period: int = 10, **kwargs: Any) -> LocalRateLimit:
        return LocalRateLimit(limit, period, clock=clock, **kwargs)

    return Harness(clock, make)


async def successes(binding: LocalRateLimit, key: str, calls: int) -> list[bool]:
    return [(await binding.limit({"key": key})).success for _ in range(calls)]


async def test_implements_the_port_and_answers_a_dict_with_attribute_access(rl: Harness) -> None:
    binding = rl.make()
    assert isinstance(binding, RateLimit)
    outcome = await binding.limit({"key": "k"})
    assert outcome == {"success": True}
    assert outcome.success is True


async def test_allows_limit_calls_per_key_per_window(rl: Harness) -> None:
    binding = rl.make(limit=3)
    assert await successes(binding, "alice", 5) == [True, True, True, False, False]
    assert await successes(binding, "bob", 1) == [True]  # keys are counted separately


async def test_refused_calls_do_not_count(rl: Harness) -> None:
    binding = rl.make(limit=1, period=10)
    assert await successes(binding, "k", 3) == [True, False, False]
    rl.advance(10)
    assert await successes(binding, "k", 2) == [True, False]


async def test_windows_are_fixed_and_aligned_to_the_period(rl: Harness) -> None:
    binding = rl.make(limit=2, period=10)
    rl.advance(8)
    assert await successes(binding, "k", 3) == [True, True, False]
    rl.advance(1.9)  # still the same 10 s window
    assert await successes(binding, "k", 1) == [False]
    rl.advance(0.1)  # the window rolls over on the boundary, not 10 s after the first call
    assert await successes(binding, "k", 3) == [True, True, False]


async def test_sixty_second_period(rl: Harness) -> None:
    binding = rl.make(limit=1, period=60)
    assert await successes(binding, "k", 2) == [True, False]
    rl.advance(30)
    assert await successes(binding, "k", 1) == [False]
    rl.advance(30)
    assert await successes(binding, "k", 1) == [True]


async def test_key_as_keyword_argument(rl: Harness) -> None:
    binding = rl.make(limit=1)
    assert (await binding.limit(key="k")).success is True
    assert (await binding.limit({"key": "k"})).success is False


async def test_bindings_sharing_a_namespace_share_counters(rl: Harness) -> None:
    shared = RateLimitNamespace()
    first = rl.make(limit=2, namespace=shared)
    second = rl.make(limit=2, namespace=shared)
    separate = rl.make(limit=2)
    assert await successes(first, "k", 2) == [True, True]
    assert await successes(second, "k", 1) == [False]
    assert await successes(separate, "k", 1) == [True]


async def test_different_periods_in_one_namespace_count_separately(rl: Harness) -> None:
    shared = RateLimitNamespace()
    ten = rl.make(limit=1, period=10, namespace=shared)
    sixty = rl.make(limit=1, period=60, namespace=shared)
    assert await successes(ten, "k", 1) == [True]
    assert await successes(sixty, "k", 1) == [True]
    rl.advance(10)
    assert await successes(ten, "k", 1) == [True]
    assert await successes(sixty, "k", 1) == [False]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ((), "invalid key"),
        (({},), "invalid key"),
        (({"key": 5},), "invalid key: 5"),
        (({"key": None},), "invalid key"),
        (("k",), "invalid rate limit options"),
    ],
)
async def test_missing_or_non_string_key_is_refused(rl: Harness, call: tuple[Any, ...], message: str) -> None:
    with pytest.raises(RateLimitError, match=message) as caught:
        await rl.make().limit(*call)
    assert isinstance(caught.value, BindingError)


async def test_unknown_options_are_refused(rl: Harness) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        await rl.make().limit({"key": "k", "limit": 1000})


@pytest.mark.parametrize("period", [0, 1, 30, 61, 3600, True])
def test_period_must_be_10_or_60(period: int) -> None:
    with pytest.raises(RateLimitConfigError, match="must be either 10 or 60"):
        LocalRateLimit(10, period)


@pytest.mark.parametrize("limit", [0, -1, 1.5, "10", True])
def test_limit_must_be_a_positive_integer(limit: Any) -> None:
    with pytest.raises(RateLimitConfigError, match=r"simple\.limit"):
        LocalRateLimit(limit, 60)


async def test_from_wrangler(rl: Harness) -> None:
    binding = LocalRateLimit.from_wrangler(
        {"name": "RL", "namespace_id": "1001", "simple": {"limit": 2, "period": 60}}, clock=rl.clock
    )
    assert (binding.limit_value, binding.period) == (2, 60)
    assert await successes(binding, "k", 3) == [True, True, False]


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"namespace_id": "1001", "simple": {"limit": 1, "period": 60}}, '"name"'),
        ({"name": "RL", "simple": {"limit": 1, "period": 60}}, "namespace_id"),
        ({"name": "RL", "namespace_id": 1001, "simple": {"limit": 1, "period": 60}}, "namespace_id"),
        ({"name": "RL", "namespace_id": "abc", "simple": {"limit": 1, "period": 60}}, "namespace_id"),
        ({"name": "RL", "namespace_id": "1001"}, '"simple"'),
        ({"name": "RL", "namespace_id": "1001", "simple": {"limit": 1}}, '"period"'),
        ({"name": "RL", "namespace_id": "1001", "simple": {"limit": 1, "period": 30}}, r"simple\.period"),
        ({"name": "RL", "namespace_id": "1001", "simple": {"limit": 0, "period": 10}}, r"simple\.limit"),
        ({"name": "RL", "namespace_id": "1001", "simple": {"limit": 1, "period": 10, "burst": 2}}, "burst"),
        ({"name": "RL", "namespace_id": "1001", "simple": {"limit": 1, "period": 10}, "x": 1}, "'x'"),
    ],
)
def test_from_wrangler_validation_names_the_field(table: dict[str, Any], named: str) -> None:
    with pytest.raises(RateLimitConfigError, match=named):
        LocalRateLimit.from_wrangler(table)
