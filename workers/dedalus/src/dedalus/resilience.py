"""Resilience around provider calls: per-attempt timeouts, retries with backoff, fallbacks, breakers.

The orchestrator calls one of two drivers with the routes :meth:`dedalus.routing.ModelCatalog.resolve`
chose (primary first):

- :func:`complete_with_fallbacks` — one awaited call per attempt (``ChatProvider.complete``), each under
  ``asyncio.wait_for``; returns ``(route, result)`` of the first success;
- :func:`stream_with_fallbacks` — an async iterator of ``(route, part)``. It retries and falls back only
  until the first ``TextDelta`` / ``ToolCallPart`` was yielded; a failure after that raises
  :class:`StreamInterruptedError` (retrying then would send the client the same text twice). The first
  part must arrive within ``first_part_timeout_s``, each later one within ``idle_timeout_s``.

Per route, a failure whose kind is retryable (timeout, 429, 5xx, bad response) is retried up to
``max_retries`` times after a delay: exponential backoff with FULL jitter (uniform in
``[0, min(backoff_max_s, backoff_base_s * backoff_factor ** (n - 1))]``), or for a 429 that says
``Retry-After``, that many seconds capped at ``max_retry_after_s``. Then the next route. AUTH and
CONFIGURATION failures are not retried but fall back (another provider has other credentials);
INVALID_REQUEST stops the chain (the same request would fail everywhere): :class:`RequestRejectedError`.
When no route answers, :class:`ChainExhaustedError` carries the last :class:`ProviderError` and every
attempt for the trace; :func:`error_event` turns any of these into the terminal ``ErrorEvent``.

Circuit breakers (:class:`CircuitBreaker`, one per provider name in a :class:`BreakerRegistry`): after
``threshold`` consecutive failures a provider is skipped for ``cooldown_s``; then one probe call is let
through (half-open): success closes the circuit, failure re-opens it for another cool-down. Only
failures that say the provider is unhealthy count (timeouts, 429, 5xx, bad responses); an
INVALID_REQUEST answer proves it is up and counts as a success; AUTH / CONFIGURATION say nothing about
its health and leave the breaker as it was.

WHERE BREAKER STATE LIVES: in module-level memory of the isolate (:func:`isolate_breakers`), not in KV
or D1. KV is eventually consistent (a write can take up to a minute to be seen elsewhere), so isolates
could not agree in time anyway, and a KV read plus write per provider call would cost more latency and
money than the failures it saves; D1 would put a database round trip on every model call. So each
isolate learns a provider's health on its own: an isolate that just started sends up to ``threshold``
calls to a dead provider before it stops, which a retry budget of 3 already bounds.

Everything that varies is injected (``clock``, ``sleep``, ``rand``), so tests run deterministically
with a fake clock and a recording sleep. The default ``rand`` draws from the OS at call time, never
from state seeded at import: Python Workers snapshot module state at deploy, and a shared seed would
make every isolate jitter in lock-step, which is what jitter exists to prevent.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from edgerag.llm.events import ErrorCode, ErrorEvent

from dedalus.providers.base import FailureKind, ProviderError, StreamPart, TextDelta, ToolCallPart
from dedalus.routing import ModelRoute

__all__ = [
    "Attempt",
    "BreakerRegistry",
    "BreakerState",
    "ChainExhaustedError",
    "CircuitBreaker",
    "RequestRejectedError",
    "RetryPolicy",
    "StreamInterruptedError",
    "complete_with_fallbacks",
    "error_event",
    "isolate_breakers",
    "stream_with_fallbacks",
]

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Random = Callable[[], float]

_SYSTEM_RANDOM = secrets.SystemRandom()  # stateless: every draw reads the OS, none happens at import


def _system_random() -> float:
    return _SYSTEM_RANDOM.random()


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3  # retries per route after the first attempt
    attempt_timeout_s: float = 30.0  # one complete() call
    first_part_timeout_s: float | None = None  # streams: until the first part (default: attempt timeout)
    idle_timeout_s: float | None = None  # streams: between parts (default: attempt timeout)
    backoff_base_s: float = 0.5
    backoff_factor: float = 2.0
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0  # the longest Retry-After honoured

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("attempt_timeout_s", "backoff_base_s", "backoff_max_s", "max_retry_after_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be >= 1")

    @property
    def first_part_timeout(self) -> float:
        return self.attempt_timeout_s if self.first_part_timeout_s is None else self.first_part_timeout_s

    @property
    def idle_timeout(self) -> float:
        return self.attempt_timeout_s if self.idle_timeout_s is None else self.idle_timeout_s

    def backoff_cap(self, retry: int) -> float:
        """The upper bound of the jittered delay before retry number ``retry`` (1-based)."""
        exponent = max(retry - 1, 0)
        try:  # a large retry count overflows the float before min() could cap it
            raw = self.backoff_base_s * self.backoff_factor**exponent
        except OverflowError:
            return self.backoff_max_s
        return min(self.backoff_max_s, raw)

    def delay(self, retry: int, error: ProviderError, rand: Random) -> float:
        """Seconds to wait before retry ``retry`` (1-based) after ``error``."""
        if error.kind is FailureKind.RATE_LIMITED and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after_s)
        return rand() * self.backoff_cap(retry)


# ------------------------------------------------------------------------------------ breakers


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_UNHEALTHY = frozenset(
    {FailureKind.TIMEOUT, FailureKind.RATE_LIMITED, FailureKind.SERVER, FailureKind.BAD_RESPONSE}
)


class CircuitBreaker:
    """One provider's circuit. Call :meth:`allow` before a call and exactly one of
    :meth:`record_success`, :meth:`record_failure` or :meth:`release` after it."""

    def __init__(self, name: str, *, threshold: int = 5, cooldown_s: float = 30.0, clock: Clock) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.cooldown_s:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probe_started = None
        # Half-open: one probe at a time. A probe whose verdict never came (its caller vanished
        # without release()) is presumed lost after a cool-down, so the circuit cannot stick.
        if self._probe_started is not None and now - self._probe_started < self.cooldown_s:
            return False
        self._probe_started = now
        return True

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_started = None

    def record_failure(self) -> None:
        self._failures += 1
        self._probe_started = None
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()

    def release(self) -> None:
        """The call ended without a verdict on the provider's health (cancelled, or AUTH/CONFIG)."""
        self._probe_started = None

    def record(self, kind: FailureKind) -> None:
        """Record a failed call by its kind (see the module docstring for which kinds count)."""
        if kind in _UNHEALTHY:
            self.record_failure()
        elif kind is FailureKind.INVALID_REQUEST:
            self.record_success()
        else:
            self.release()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state.value}, failures={self._failures})"


class BreakerRegistry:
    """The breakers of one isolate, one per provider name, created on first use."""

    def __init__(
        self, *, threshold: int = 5, cooldown_s: float = 30.0, clock: Clock = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, provider: str) -> CircuitBreaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = CircuitBreaker(
                provider, threshold=self.threshold, cooldown_s=self.cooldown_s, clock=self._clock
            )
            self._breakers[provider] = breaker
        return breaker

    def states(self) -> dict[str, BreakerState]:
        return {name: b.state for name, b in sorted(self._breakers.items())}


_ISOLATE: dict[tuple[int, float], BreakerRegistry] = {}


def isolate_breakers(*, threshold: int = 5, cooldown_s: float = 30.0) -> BreakerRegistry:
    """The isolate's registry (module memory, shared by every request this isolate serves); created on
    first use, never at import. One registry per (threshold, cool-down) so a settings change applies."""
    key = (threshold, cooldown_s)
    registry = _ISOLATE.get(key)
    if registry is None:
        registry = _ISOLATE[key] = BreakerRegistry(threshold=threshold, cooldown_s=cooldown_s)
    return registry


# ------------------------------------------------------------------------------------ outcomes

Outcome = Literal[
    "ok",
    "circuit_open",
    "timeout",
    "rate_limited",
    "server",
    "bad_response",
    "auth",
    "invalid_request",
    "configuration",
]


@dataclass(frozen=True)
class Attempt:
    """One try (or skip) of one route, for the trace."""

    model: str
    provider: str
    outcome: Outcome  # "ok", "circuit_open" (skipped), or the FailureKind's value
    status: int | None = None  # the provider's HTTP status, when there was one
    retry: int = 0  # 0 for the first attempt on this route
    delay_s: float = 0.0  # slept before this attempt
    elapsed_s: float = 0.0


class ChainExhaustedError(Exception):
    """No route answered. ``last_error`` is None when every route's circuit was open."""

    def __init__(self, last_error: ProviderError | None, attempts: list[Attempt]) -> None:
        self.last_error = last_error
        self.attempts = tuple(attempts)
        models = len({a.model for a in attempts})
        if last_error is None:
            message = f"every model for this call is unavailable right now ({models} skipped: circuit open)"
        else:
            message = f"{len(attempts)} attempt(s) on {models} model(s) failed; last: {last_error.message}"
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.last_error!r}, attempts={len(self.attempts)})"


class RequestRejectedError(ChainExhaustedError):
    """A provider rejected the request itself (INVALID_REQUEST): no other route was tried."""


class StreamInterruptedError(Exception):
    """A stream failed after text or a tool call had been yielded; it was not retried."""

    def __init__(self, route: ModelRoute, error: ProviderError, attempts: list[Attempt]) -> None:
        super().__init__(f"the stream from {route.model_id!r} broke after it had started: {error.message}")
        self.route = route
        self.error = error
        self.attempts = tuple(attempts)

    def __repr__(self) -> str:
        return f"StreamInterruptedError(model={self.route.model_id!r}, {self.error!r})"


_EVENT_BY_KIND: dict[FailureKind, tuple[ErrorCode, int, bool]] = {
    FailureKind.TIMEOUT: ("timeout", 504, True),
    FailureKind.RATE_LIMITED: ("rate_limited", 429, True),
    FailureKind.SERVER: ("upstream", 502, True),
    FailureKind.BAD_RESPONSE: ("upstream", 502, True),
    FailureKind.AUTH: ("upstream", 502, False),
    FailureKind.INVALID_REQUEST: ("invalid_request", 400, False),
    FailureKind.CONFIGURATION: ("configuration", 503, False),
}


def error_event(exc: ChainExhaustedError | StreamInterruptedError) -> ErrorEvent:
    """The terminal event for a failed call (never a 500: each outcome has its status)."""
    if isinstance(exc, StreamInterruptedError):
        return ErrorEvent(code="interrupted", message=str(exc), status=502, retryable=True, partial=True)
    if exc.last_error is None:
        return ErrorEvent(code="unavailable", message=exc.message, status=503, retryable=True)
    code, status, retryable = _EVENT_BY_KIND[exc.last_error.kind]
    return ErrorEvent(code=code, message=exc.message, status=status, retryable=retryable)


# ------------------------------------------------------------------------------------ drivers


@dataclass
class _Run:
    """The bookkeeping shared by both drivers: breakers, the attempt trace, delays, the deadline."""

    policy: RetryPolicy
    breakers: BreakerRegistry
    clock: Clock
    sleep: Sleep
    rand: Random
    deadline: float | None
    on_attempt: Callable[[Attempt], None] | None
    attempts: list[Attempt] = field(default_factory=list)
    last_error: ProviderError | None = None

    def note(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    def admit(self, route: ModelRoute, retry: int, delay: float) -> bool:
        if self.breakers.get(route.provider).allow():
            return True
        self.note(Attempt(route.model_id, route.provider, "circuit_open", retry=retry, delay_s=delay))
        return False

    def timeout(self, seconds: float) -> float:
        if self.deadline is None:
            return seconds
        return max(0.0, min(seconds, self.deadline - self.clock()))

    def succeeded(self, route: ModelRoute, retry: int, delay: float, started: float) -> None:
        self.breakers.get(route.provider).record_success()
        self.note(Attempt(route.model_id, route.provider, "ok", None, retry, delay, self.clock() - started))

    def failed(
        self, route: ModelRoute, error: ProviderError, retry: int, delay: float, started: float
    ) -> None:
        self.breakers.get(route.provider).record(error.kind)
        self.last_error = error
        outcome: Outcome = error.kind.value
        self.note(
            Attempt(
                route.model_id, route.provider, outcome, error.status, retry, delay, self.clock() - started
            )
        )

    def verdict(self, error: ProviderError, retry: int) -> Literal["retry", "next", "stop"]:
        if error.kind is FailureKind.INVALID_REQUEST:
            return "stop"
        if not error.retryable or retry >= self.policy.max_retries:
            return "next"
        return "retry"

    async def wait(self, retry: int, error: ProviderError) -> float | None:
        """Sleep before retry ``retry``; None (without sleeping) if that would pass the deadline."""
        delay = self.policy.delay(retry, error, self.rand)
        if self.deadline is not None and self.clock() + delay >= self.deadline:
            return None
        await self.sleep(delay)
        return delay

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def exhausted(self) -> ChainExhaustedError:
        return ChainExhaustedError(self.last_error, self.attempts)


async def _timed(awaitable: Awaitable[T], seconds: float, route: ModelRoute, what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout=seconds)
    except TimeoutError as exc:
        raise ProviderError(
            FailureKind.TIMEOUT,
            f"no {what} from {route.model_id!r} within {seconds:g}s",
            provider=route.provider,
        ) from exc
    except OSError as exc:  # the HTTP port's "no response at all"; adapters should translate it first
        raise ProviderError(
            FailureKind.SERVER, f"{route.provider} unreachable: {type(exc).__name__}", provider=route.provider
        ) from exc


async def complete_with_fallbacks(
    routes: list[ModelRoute],
    attempt: Callable[[ModelRoute], Awaitable[T]],
    policy: RetryPolicy,
    breakers: BreakerRegistry,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rand: Random = _system_random,
    deadline: float | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> tuple[ModelRoute, T]:
    """The first route's result that succeeds, retrying and falling back per the module's rules.

    ``deadline`` is a ``clock()`` value past which nothing new starts (and no attempt runs beyond).
    """
    run = _Run(policy, breakers, clock, sleep, rand, deadline, on_attempt)
    for route in routes:
        retry, delay = 0, 0.0
        while not run.past_deadline() and run.admit(route, retry, delay):
            started = clock()
            try:
                result = await _timed(attempt(route), run.timeout(policy.attempt_timeout_s), route, "answer")
            except ProviderError as error:
                run.failed(route, error, retry, delay, started)
                verdict = run.verdict(error, retry)
                if verdict == "stop":
                    raise RequestRejectedError(error, run.attempts) from error
                if verdict == "next":
                    break
                retry += 1
                waited = await run.wait(retry, error)
                if waited is None:
                    raise run.exhausted() from error
                delay = waited
            except BaseException:
                breakers.get(route.provider).release()  # cancelled: no verdict on the provider
                raise
            else:
                run.succeeded(route, retry, delay, started)
                return route, result
        if run.past_deadline():
            break
    raise run.exhausted()


def _is_content(part: StreamPart) -> bool:
    # What the client sees as output: once any was sent, a retry would send it again.
    return isinstance(part, ToolCallPart) or (isinstance(part, TextDelta) and part.text != "")


async def _close(iterator: AsyncIterator[StreamPart]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        # The outcome is already decided (a result, or the error being raised); a provider that also
        # fails to close must not replace it.
        with contextlib.suppress(Exception):
            await aclose()


async def stream_with_fallbacks(
    routes: list[ModelRoute],
    open_stream: Callable[[ModelRoute], AsyncIterator[StreamPart]],
    policy: RetryPolicy,
    breakers: BreakerRegistry,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rand: Random = _system_random,
    deadline: float | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> AsyncIterator[tuple[ModelRoute, StreamPart]]:
    """``(route, part)`` as parts arrive from the first route whose stream gets going.

    Until a ``TextDelta`` or ``ToolCallPart`` was yielded a failure is retried / falls back like
    :func:`complete_with_fallbacks` (parts yielded before that — a ``UsagePart`` — are real consumption
    of the failed attempt and stay reported); after it, :class:`StreamInterruptedError`.
    """
    run = _Run(policy, breakers, clock, sleep, rand, deadline, on_attempt)
    for route in routes:
        retry, delay = 0, 0.0
        while not run.past_deadline() and run.admit(route, retry, delay):
            started = clock()
            committed = False
            failure: ProviderError | None = None
            iterator = open_stream(route).__aiter__()
            try:
                timeout = policy.first_part_timeout
                while True:
                    try:
                        part = await _timed(anext(iterator), run.timeout(timeout), route, "stream data")
                    except StopAsyncIteration:
                        break
                    timeout = policy.idle_timeout
                    committed = committed or _is_content(part)
                    yield route, part
            except ProviderError as exc:
                failure = exc
            except BaseException:
                breakers.get(route.provider).release()  # cancelled, or closed by the consumer
                raise
            finally:
                await _close(iterator)
            if failure is None:
                run.succeeded(route, retry, delay, started)
                return
            run.failed(route, failure, retry, delay, started)
            if committed:
                raise StreamInterruptedError(route, failure, run.attempts) from failure
            verdict = run.verdict(failure, retry)
            if verdict == "stop":
                raise RequestRejectedError(failure, run.attempts) from failure
            if verdict == "next":
                break
            retry += 1
            waited = await run.wait(retry, failure)
            if waited is None:
                raise run.exhausted() from failure
            delay = waited
        if run.past_deadline():
            break
    raise run.exhausted()
