"""Resilience: every failure mode of a provider call, with a scripted provider and a fake clock.

The provider fake implements ``ChatProvider`` and replays a script (results, ProviderErrors, hangs,
streams that break after N parts) while recording each call; the clock is a number that only the
recording ``sleep`` advances, so backoff delays are asserted exactly. Hangs meet real (tiny) timeouts:
the hang never ends by itself, so the outcome does not depend on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dedalus.providers.base import (
    Completion,
    FailureKind,
    FinishPart,
    ProviderError,
    ProviderRequest,
    StreamPart,
    TextDelta,
    ToolCallPart,
    UsagePart,
)
from dedalus.resilience import (
    Attempt,
    BreakerRegistry,
    BreakerState,
    ChainExhaustedError,
    CircuitBreaker,
    RequestRejectedError,
    RetryPolicy,
    StreamInterruptedError,
    complete_with_fallbacks,
    error_event,
    stream_with_fallbacks,
)
from dedalus.routing import ModelCatalog, ModelRoute
from edgerag.llm.config import ModelsConfig
from edgerag.llm.types import ToolCall, Usage

HANG = "hang"  # a call that never answers


@dataclass
class Broken:
    """A stream that yields ``parts`` and then fails with ``error`` (or hangs when error is HANG)."""

    parts: list[StreamPart]
    error: ProviderError | str


def ok(text: str = "hi") -> Completion:
    return Completion(
        text=text, tool_calls=[], usage=Usage(prompt_tokens=3, completion_tokens=1), finish_reason="stop"
    )


def fail(kind: FailureKind, status: int | None = None, retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        kind, f"scripted {kind.value}", provider="scripted", status=status, retry_after=retry_after
    )


STREAM_OK: list[StreamPart] = [
    TextDelta("Hel"),
    TextDelta("lo"),
    UsagePart(Usage(completion_tokens=2)),
    FinishPart("stop"),
]


@dataclass
class ScriptedProvider:
    """A ChatProvider that replays ``script`` one item per call and records every call."""

    name: str
    script: list[Any] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    closed: int = 0  # streams the caller closed (finished or abandoned)
    called: asyncio.Event = field(default_factory=asyncio.Event)

    def _next(self, how: str) -> Any:
        self.calls.append(how)
        self.called.set()
        if not self.script:
            raise AssertionError(f"{self.name}: unscripted {how} call #{len(self.calls)}")
        return self.script.pop(0)

    async def complete(self, request: ProviderRequest) -> Completion:
        item = self._next("complete")
        if item == HANG:
            await asyncio.Event().wait()
        if isinstance(item, ProviderError):
            raise item
        assert isinstance(item, Completion)
        return item

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamPart]:
        item = self._next("stream")
        try:
            if item == HANG:
                await asyncio.Event().wait()
            if isinstance(item, ProviderError):
                raise item
            parts, error = (item.parts, item.error) if isinstance(item, Broken) else (item, None)
            for part in parts:
                yield part
            if error == HANG:
                await asyncio.Event().wait()
            if isinstance(error, ProviderError):
                raise error
        finally:
            self.closed += 1


class FakeTime:
    """A clock only ``sleep`` moves; ``sleep`` records each delay."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def routes_for(*providers: str) -> list[ModelRoute]:
    entry = {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0, "context_window": 8000}
    config = ModelsConfig.model_validate(
        {
            "providers": {p: {"kind": "workers-ai"} for p in providers},
            "models": {
                "chat": f"m-{providers[0]}",
                "fallback_chat": [f"m-{p}" for p in providers[1:]],
                "catalog": {f"m-{p}": {"provider": p, **entry} for p in providers},
            },
        }
    )
    return ModelCatalog(config).resolve("any")


REQUEST = ProviderRequest(model="m", messages=[])
POLICY = RetryPolicy(
    max_retries=3, attempt_timeout_s=0.05, backoff_base_s=0.5, backoff_factor=2, backoff_max_s=8
)


class World:
    def __init__(self, *scripts: list[Any], threshold: int = 5, cooldown_s: float = 30.0) -> None:
        self.time = FakeTime()
        names = "abcdefgh"[: len(scripts)]
        self.providers = {n: ScriptedProvider(n, list(s)) for n, s in zip(names, scripts, strict=True)}
        self.routes = routes_for(*names)
        self.breakers = BreakerRegistry(threshold=threshold, cooldown_s=cooldown_s, clock=self.time.clock)
        self.attempts: list[Attempt] = []

    def kwargs(self, rand: float = 1.0) -> dict[str, Any]:
        return {
            "clock": self.time.clock,
            "sleep": self.time.sleep,
            "rand": lambda: rand,
            "on_attempt": self.attempts.append,
        }

    async def complete(
        self, policy: RetryPolicy = POLICY, rand: float = 1.0, **extra: Any
    ) -> tuple[ModelRoute, Completion]:
        async def attempt(route: ModelRoute) -> Completion:
            return await self.providers[route.provider].complete(REQUEST)

        return await complete_with_fallbacks(
            self.routes, attempt, policy, self.breakers, **(self.kwargs(rand) | extra)
        )

    def stream(
        self, policy: RetryPolicy = POLICY, rand: float = 1.0, **extra: Any
    ) -> AsyncIterator[tuple[ModelRoute, StreamPart]]:
        return stream_with_fallbacks(
            self.routes,
            lambda route: self.providers[route.provider].stream(REQUEST),
            policy,
            self.breakers,
            **(self.kwargs(rand) | extra),
        )

    async def collect(
        self, policy: RetryPolicy = POLICY, rand: float = 1.0, **extra: Any
    ) -> list[tuple[str, StreamPart]]:
        return [(route.model_id, part) async for route, part in self.stream(policy, rand, **extra)]

    def outcomes(self) -> list[tuple[str, str]]:
        return [(a.model, a.outcome) for a in self.attempts]


# ------------------------------------------------------------------------------------ complete


async def test_timeout_then_success() -> None:
    world = World([HANG, ok("second")])
    route, result = await world.complete(rand=0.5)
    assert (route.model_id, result.text) == ("m-a", "second")
    assert world.outcomes() == [("m-a", "timeout"), ("m-a", "ok")]
    assert world.time.slept == [0.25]  # full jitter: 0.5 x the first cap (0.5 s)


async def test_429_with_retry_after_is_honoured_and_capped() -> None:
    world = World(
        [fail(FailureKind.RATE_LIMITED, 429, retry_after=7), fail(FailureKind.RATE_LIMITED, 429, 120), ok()]
    )
    await world.complete(RetryPolicy(max_retries=3, max_retry_after_s=30))
    assert world.time.slept == [7.0, 30.0]  # exactly Retry-After (no jitter below it), then the cap
    assert [a.status for a in world.attempts] == [429, 429, None]


async def test_429_without_retry_after_backs_off_like_any_retryable_failure() -> None:
    world = World([fail(FailureKind.RATE_LIMITED, 429), ok()])
    await world.complete(rand=1.0)
    assert world.time.slept == [0.5]


async def test_5xx_three_retries_then_the_next_route() -> None:
    world = World([fail(FailureKind.SERVER, 503)] * 4, [ok("from b")])
    route, result = await world.complete()
    assert (route.model_id, result.text) == ("m-b", "from b")
    assert len(world.providers["a"].calls) == 4  # the first attempt and max_retries=3 retries
    assert world.time.slept == [0.5, 1.0, 2.0]  # rand=1.0 shows each cap: base 0.5, factor 2
    assert world.outcomes() == [("m-a", "server")] * 4 + [("m-b", "ok")]
    assert [a.retry for a in world.attempts] == [0, 1, 2, 3, 0]


async def test_auth_is_not_retried_but_falls_back() -> None:
    world = World([fail(FailureKind.AUTH, 401)], [ok()])
    route, _ = await world.complete()
    assert route.model_id == "m-b"
    assert world.providers["a"].calls == ["complete"] and world.time.slept == []


async def test_configuration_failure_falls_back_without_retry() -> None:
    world = World([fail(FailureKind.CONFIGURATION)], [ok()])
    route, _ = await world.complete()
    assert route.model_id == "m-b" and len(world.providers["a"].calls) == 1


async def test_invalid_request_is_neither_retried_nor_fallen_back() -> None:
    world = World([fail(FailureKind.INVALID_REQUEST, 400)], [ok()])
    with pytest.raises(RequestRejectedError) as info:
        await world.complete()
    assert world.providers["b"].calls == [] and world.time.slept == []
    event = error_event(info.value)
    assert (event.code, event.status, event.retryable) == ("invalid_request", 400, False)


async def test_every_route_failing_exhausts_the_chain_with_a_trace() -> None:
    world = World([fail(FailureKind.SERVER, 500)], [fail(FailureKind.TIMEOUT)])
    with pytest.raises(ChainExhaustedError) as info:
        await world.complete(RetryPolicy(max_retries=0))
    exc = info.value
    assert exc.last_error is not None and exc.last_error.kind is FailureKind.TIMEOUT
    assert [(a.model, a.outcome, a.status) for a in exc.attempts] == [
        ("m-a", "server", 500),
        ("m-b", "timeout", None),
    ]
    event = error_event(exc)
    assert (event.code, event.status, event.retryable) == ("timeout", 504, True)
    assert "2 attempt(s) on 2 model(s) failed" in event.message


async def test_a_retry_that_would_pass_the_deadline_is_not_started() -> None:
    world = World([fail(FailureKind.SERVER)] * 2, [ok()])
    with pytest.raises(ChainExhaustedError):
        await world.complete(deadline=world.time.now + 0.4)  # the first backoff (0.5 s) would pass it
    assert world.time.slept == [] and world.providers["b"].calls == []


async def test_unreachable_provider_oserror_is_a_retryable_server_failure() -> None:
    world = World([], [ok()])

    async def attempt(route: ModelRoute) -> Completion:
        if route.provider == "a":
            raise ConnectionResetError("reset by peer")
        return await world.providers[route.provider].complete(REQUEST)

    route, _ = await complete_with_fallbacks(
        world.routes, attempt, RetryPolicy(max_retries=1), world.breakers, **world.kwargs()
    )
    assert route.model_id == "m-b"
    assert world.outcomes() == [("m-a", "server"), ("m-a", "server"), ("m-b", "ok")]


# ------------------------------------------------------------------------------------ breakers


async def test_breaker_opens_after_n_failures_and_the_provider_is_skipped() -> None:
    world = World([fail(FailureKind.SERVER)] * 3, [ok()] * 4, threshold=3)
    one_try = RetryPolicy(max_retries=0)
    for _ in range(3):
        await world.complete(one_try)
    assert world.breakers.get("a").state is BreakerState.OPEN
    world.attempts.clear()
    route, _ = await world.complete(one_try)
    assert route.model_id == "m-b"
    assert len(world.providers["a"].calls) == 3  # not called while open
    assert world.outcomes() == [("m-a", "circuit_open"), ("m-b", "ok")]


async def test_half_open_probe_after_the_cool_down_closes_on_success() -> None:
    world = World([fail(FailureKind.SERVER)] * 2 + [ok("probe")], [ok()] * 2, threshold=2, cooldown_s=30)
    one_try = RetryPolicy(max_retries=0)
    await world.complete(one_try)
    await world.complete(one_try)
    assert world.breakers.get("a").state is BreakerState.OPEN
    world.time.now += 30
    route, result = await world.complete(one_try)
    assert (route.model_id, result.text) == ("m-a", "probe")
    assert world.breakers.get("a").state is BreakerState.CLOSED


async def test_a_failed_probe_reopens_the_circuit_for_another_cool_down() -> None:
    world = World([fail(FailureKind.SERVER)] * 3, [ok()] * 4, threshold=2, cooldown_s=30)
    one_try = RetryPolicy(max_retries=0)
    await world.complete(one_try)
    await world.complete(one_try)
    world.time.now += 31
    await world.complete(one_try)  # the probe fails, b answers
    assert world.breakers.get("a").state is BreakerState.OPEN
    world.attempts.clear()
    await world.complete(one_try)
    assert world.outcomes()[0] == ("m-a", "circuit_open")
    assert len(world.providers["a"].calls) == 3


async def test_every_circuit_open_is_unavailable() -> None:
    world = World([fail(FailureKind.SERVER)], threshold=1)
    with pytest.raises(ChainExhaustedError):
        await world.complete(RetryPolicy(max_retries=0))
    with pytest.raises(ChainExhaustedError) as info:
        await world.complete()
    assert info.value.last_error is None
    event = error_event(info.value)
    assert (event.code, event.status, event.retryable) == ("unavailable", 503, True)


async def test_retries_stop_when_the_routes_own_failures_open_its_circuit() -> None:
    world = World([fail(FailureKind.SERVER)] * 2, [ok()], threshold=2)
    route, _ = await world.complete()  # max_retries=3, but the breaker opens after 2
    assert route.model_id == "m-b"
    assert world.outcomes() == [("m-a", "server"), ("m-a", "server"), ("m-a", "circuit_open"), ("m-b", "ok")]


def test_half_open_lets_one_probe_through_at_a_time() -> None:
    time = FakeTime()
    breaker = CircuitBreaker("p", threshold=1, cooldown_s=10, clock=time.clock)
    breaker.record_failure()
    assert not breaker.allow()
    time.now += 10
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # a second caller while the probe runs
    breaker.release()  # the probe was cancelled: no verdict
    assert breaker.allow()
    time.now += 10  # a probe that never reported is presumed lost after a cool-down
    assert breaker.allow()


def test_which_failures_count_against_a_provider() -> None:
    time = FakeTime()
    breaker = CircuitBreaker("p", threshold=2, cooldown_s=10, clock=time.clock)
    breaker.record(FailureKind.TIMEOUT)
    breaker.record(FailureKind.AUTH)  # says nothing about health
    breaker.record(FailureKind.CONFIGURATION)
    assert breaker.consecutive_failures == 1 and breaker.state is BreakerState.CLOSED
    breaker.record(FailureKind.INVALID_REQUEST)  # the provider answered: it is up
    assert breaker.consecutive_failures == 0
    breaker.record(FailureKind.BAD_RESPONSE)
    breaker.record(FailureKind.RATE_LIMITED)
    assert breaker.state is BreakerState.OPEN


async def test_cancelled_call_releases_a_half_open_probe() -> None:
    world = World([HANG], threshold=1, cooldown_s=5)
    breaker = world.breakers.get("a")
    breaker.record_failure()
    world.time.now += 5
    task = asyncio.create_task(world.complete(RetryPolicy(attempt_timeout_s=60)))
    await world.providers["a"].called.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.allow()  # the slot is free again, not stuck on a probe that will never report


# ------------------------------------------------------------------------------------ streams


async def test_stream_failing_before_the_first_token_is_retried() -> None:
    world = World([Broken([UsagePart(Usage(prompt_tokens=5))], fail(FailureKind.SERVER, 502)), STREAM_OK])
    parts = await world.collect(rand=0.5)
    texts = [p.text for _, p in parts if isinstance(p, TextDelta)]
    assert texts == ["Hel", "lo"]  # once: nothing of the failed attempt's text
    assert isinstance(parts[0][1], UsagePart)  # the failed attempt's consumption is still reported
    assert world.outcomes() == [("m-a", "server"), ("m-a", "ok")]
    assert world.time.slept == [0.25]
    assert world.providers["a"].closed == 2


async def test_stream_that_never_starts_times_out_and_falls_back() -> None:
    world = World([HANG], [STREAM_OK])
    parts = await world.collect(RetryPolicy(max_retries=0, first_part_timeout_s=0.01, idle_timeout_s=60))
    assert {model for model, _ in parts} == {"m-b"}
    assert world.outcomes() == [("m-a", "timeout"), ("m-b", "ok")]


async def test_stream_failing_after_the_first_token_is_interrupted_not_retried() -> None:
    world = World([Broken([TextDelta("Hel")], fail(FailureKind.SERVER, 502))], [STREAM_OK])
    seen: list[StreamPart] = []
    with pytest.raises(StreamInterruptedError) as info:
        async for _, part in world.stream():
            seen.append(part)
    assert seen == [TextDelta("Hel")]
    assert world.providers["a"].calls == ["stream"] and world.providers["b"].calls == []
    assert world.time.slept == []
    event = error_event(info.value)
    assert (event.code, event.status, event.partial) == ("interrupted", 502, True)
    assert info.value.route.model_id == "m-a"


async def test_a_tool_call_also_commits_the_stream() -> None:
    call = ToolCallPart(ToolCall(id="c1", name="search", arguments="{}"))
    world = World([Broken([call], fail(FailureKind.BAD_RESPONSE))])
    with pytest.raises(StreamInterruptedError):
        await world.collect()


async def test_a_stream_that_stalls_after_a_token_is_interrupted_by_the_idle_timeout() -> None:
    world = World([Broken([TextDelta("Hel")], HANG)], [STREAM_OK])
    with pytest.raises(StreamInterruptedError) as info:
        await world.collect(RetryPolicy(first_part_timeout_s=60, idle_timeout_s=0.01))
    assert info.value.error.kind is FailureKind.TIMEOUT
    assert world.providers["a"].closed == 1 and world.providers["b"].calls == []


async def test_stream_invalid_request_stops_the_chain() -> None:
    world = World([fail(FailureKind.INVALID_REQUEST, 413)], [STREAM_OK])
    with pytest.raises(RequestRejectedError):
        await world.collect()
    assert world.providers["b"].calls == []


async def test_consumer_closing_the_stream_closes_the_provider_stream() -> None:
    world = World([STREAM_OK])
    stream = world.stream()
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert world.providers["a"].closed == 1
    assert world.breakers.get("a").allow()


# ------------------------------------------------------------------------------------ backoff


@pytest.mark.parametrize("retry", [1, 2, 3, 4, 5, 6, 50, 5000])
def test_full_jitter_stays_within_zero_and_the_capped_exponential(retry: int) -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_factor=2, backoff_max_s=8)
    cap = min(8.0, 0.5 * 2 ** min(retry - 1, 10))
    error = fail(FailureKind.SERVER)
    assert policy.backoff_cap(retry) == cap
    assert policy.delay(retry, error, lambda: 0.0) == 0.0
    assert policy.delay(retry, error, lambda: 0.999999) < cap
    draws = [policy.delay(retry, error, __import__("random").Random(retry).random) for _ in range(200)]
    assert all(0 <= d < cap for d in draws)


def test_the_default_random_source_jitters() -> None:
    from dedalus.resilience import _system_random

    draws = {_system_random() for _ in range(50)}
    assert len(draws) > 40 and all(0 <= d < 1 for d in draws)


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="backoff_factor"):
        RetryPolicy(backoff_factor=0.5)
