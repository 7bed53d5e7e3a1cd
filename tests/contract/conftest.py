"""Shared by every contract suite in this folder.

Each suite defines its own binding fixture parametrised over ``BACKENDS``:

- ``"local"``: the emulators in ``edgerag_local``, built on ``tmp_path``, with an injected clock.
- ``"miniflare"``: Miniflare's real implementations (workerd, as ``wrangler dev`` runs them) behind
  the thin proxies in :mod:`tests.contract.miniflare.proxies`. One bridge serves the whole session
  (started on first use, loopback only, state in a temporary folder, stopped at exit); each test
  takes fresh bindings from its pools (``DB_<n>``, ``KV_<n>``, ``R2_<n>``, fresh queues) instead of
  restarting workerd.

A case that only one backend can check is marked with :func:`only` and the reason.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.contract.miniflare.client import Bridge

BACKENDS = ["local", "miniflare"]
# Vectorize and Workers AI have no local implementation in Miniflare (they proxy to Cloudflare);
# Miniflare's rate limiter counts in wall-clock windows, which a counting assertion would race.
LOCAL_BACKENDS = ["local"]

# Consumer options of the queues declared when the bridge starts (Miniflare fixes consumers at
# start-up; declaring more later restarts workerd, about a second each).
DEFAULT_QUEUE_POOL = 48


def default_consumer(**overrides: Any) -> dict[str, Any]:
    """Cloudflare's consumer defaults (Miniflare's own are 5 / 1 s / 2), with no batch wait."""
    return {"maxBatchSize": 10, "maxBatchTimeout": 0, "maxRetries": 3, "retryDelay": 0, **overrides}


# Consumer profiles the queue suite uses besides the defaults, declared at start-up (QUEUES_PER_PROFILE
# of each, every one with its own dead-letter queue when ``dlq``) so no test restarts workerd.
QUEUE_PROFILES: list[dict[str, Any]] = [
    {"maxBatchSize": 3},
    {"maxRetries": 2, "dlq": True},
    {"dlq": True},
    {"maxRetries": 0, "dlq": True},
    {"maxRetries": 1},
]
QUEUES_PER_PROFILE = 2


def profile_key(profile: Mapping[str, Any]) -> str:
    return json.dumps(dict(sorted(profile.items())))


# The pooled binding each suite's fixture takes per test (one per test: nothing is shared).
POOL_OF_SUITE = {"test_d1": "DB", "test_kv": "KV", "test_r2": "R2"}
_pool_sizes: dict[str, int] = {}


@dataclass
class Miniflare:
    """The session's bridge and the next free binding of each pool."""

    bridge: Bridge
    pools: dict[str, int]
    counters: dict[str, Iterator[int]] = field(default_factory=dict)
    free_queues: list[str] = field(default_factory=list)
    # profile_key -> free (queue, its dead-letter queue or None) pairs
    profiled: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)

    def take_queue(self, profile: Mapping[str, Any]) -> tuple[str, str | None]:
        """A fresh queue consumed with ``profile`` (Miniflare options, ``dlq``: has its own DLQ)."""
        if not profile:
            if not self.free_queues:
                self._declare({}, 16)
            return self.free_queues.pop(0), None
        key = profile_key(profile)
        if not self.profiled.get(key):
            self._declare(profile, QUEUES_PER_PROFILE)  # restarts workerd: add the profile to QUEUE_PROFILES
        return self.profiled[key].pop(0)

    def _declare(self, profile: Mapping[str, Any], count: int) -> None:
        queues, pairs = _profile_queues(
            profile, count, offset=next(self.counters.setdefault("Q", itertools.count()))
        )
        self.bridge.declare_queues(queues)
        if profile:
            self.profiled.setdefault(profile_key(profile), []).extend(pairs)
        else:
            self.free_queues.extend(name for name, _ in pairs)

    def take(self, kind: str) -> str:
        """A binding of ``kind`` (``DB``, ``KV``, ``R2``) no other test of the session has used."""
        n = next(self.counters.setdefault(kind, itertools.count()))
        if n >= self.pools.get(kind, 0):
            raise RuntimeError(
                f"the Miniflare {kind} pool ({self.pools.get(kind, 0)}) is used up: the fixture takes one "
                f"binding per test, and the pool is sized from the collected tests (POOL_OF_SUITE)"
            )
        return f"{kind}_{n}"


@pytest.fixture(scope="session")
def miniflare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Miniflare]:
    """The session's Miniflare bridge, started on first use and stopped when the session ends."""
    queues = {f"pool-{i}": default_consumer() for i in range(DEFAULT_QUEUE_POOL)}
    profiled: dict[str, list[tuple[str, str | None]]] = {}
    for n, profile in enumerate(QUEUE_PROFILES):
        declared, pairs = _profile_queues(profile, QUEUES_PER_PROFILE, offset=n)
        queues.update(declared)
        profiled[profile_key(profile)] = pairs
    pools = {kind: max(n, 1) for kind, n in _pool_sizes.items()}
    bridge = Bridge.start(Path(tmp_path_factory.mktemp("miniflare")), queues, pools)
    try:
        yield Miniflare(
            bridge, pools, free_queues=[f"pool-{i}" for i in range(DEFAULT_QUEUE_POOL)], profiled=profiled
        )
    finally:
        bridge.stop()


def _profile_queues(
    profile: Mapping[str, Any], count: int, offset: int
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str | None]]]:
    """Miniflare consumer options for ``count`` queues of ``profile`` and the (queue, DLQ) pairs."""
    options = {k: v for k, v in profile.items() if k != "dlq"}
    queues: dict[str, dict[str, Any]] = {}
    pairs: list[tuple[str, str | None]] = []
    for i in range(count):
        name = f"p{offset}-{i}" if profile else f"pool-x{offset}-{i}"
        dlq = f"{name}-dlq" if profile.get("dlq") else None
        queues[name] = default_consumer(**options, **({"deadLetterQueue": dlq} if dlq else {}))
        if dlq is not None:
            queues[dlq] = default_consumer()
        pairs.append((name, dlq))
    return queues, pairs


def only(backend: str, reason: str) -> pytest.MarkDecorator:
    """Mark a test that runs on ``backend`` alone; the reason is what the other cannot do."""
    return pytest.mark.only_backend(backend, reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "only_backend(backend, reason): a contract case one backend alone can check, and why"
    )


def _backend(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    return next((v for v in callspec.params.values() if isinstance(v, str) and v in BACKENDS), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _pool_sizes.clear()
    for item in items:
        backend = _backend(item)
        marker = item.get_closest_marker("only_backend")
        if marker is not None and backend is not None and backend != marker.args[0]:
            item.add_marker(pytest.mark.skip(reason=f"{marker.args[0]} only: {marker.args[1]}"))
            continue
        if backend == "miniflare":
            kind = POOL_OF_SUITE.get(item.module.__name__.rpartition(".")[2] if item.module else "")
            if kind is not None:
                _pool_sizes[kind] = _pool_sizes.get(kind, 0) + 1
