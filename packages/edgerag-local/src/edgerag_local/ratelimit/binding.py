"""The local emulator of the Workers rate-limiting binding (``[[ratelimits]]`` in wrangler config).

``await env.RL.limit({"key": k})`` answers ``{"success": bool}``: at most ``limit`` successful calls
per key per ``period`` seconds (10 or 60, the only periods wrangler accepts).

Window: fixed windows aligned to the clock (``floor(now / period)``), counted per key; a refused
call does not count. Cloudflare describes the binding as permissive and eventually consistent, with
a separate counter per Cloudflare location, and miniflare emulates it with these same aligned fixed
windows. A fixed window is itself permissive: a burst straddling a window boundary can see up to
twice ``limit`` successes within one period, so code must never rely on the limiter for exact
accounting, here or at the edge.

Counters live in memory. At the edge they are per-location caches that nobody can read back and
that vanish on their own, so nothing observable is lost when a local restart clears them, and
persisting them would make local runs stricter than the edge. Bindings that share a
``namespace_id`` share counters at the edge; pass the same :class:`RateLimitNamespace` to get that
here (:meth:`LocalRateLimit.from_wrangler` takes one).

To add an option to ``limit()``, add it to ``_OPTIONS`` and handle it in :meth:`LocalRateLimit.limit`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from edgerag.jsdict import AttrDict

from edgerag_local.core.options import merge_options
from edgerag_local.ratelimit.errors import RateLimitConfigError, RateLimitError

__all__ = ["PERIODS", "LocalRateLimit", "RateLimitNamespace"]

PERIODS: Final = (10, 60)
_OPTIONS: Final = ("key",)
_WRANGLER_KEYS: Final = frozenset({"name", "namespace_id", "simple"})


class RateLimitNamespace:
    """The counters of one ``namespace_id``: per ``(period, key)``, the current window and its count."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str], tuple[int, int]] = {}
        self._windows: dict[int, int] = {}

    def hit(self, key: str, limit: int, period: int, now: float) -> bool:
        """Count one call for ``key`` if it is within ``limit`` for the window containing ``now``."""
        window = math.floor(now / period)
        if self._windows.get(period) != window:
            # Every key's window rolls over at the same instant, so the stale ones can all go now;
            # this keeps memory bounded by the keys seen in one period.
            self._counts = {k: v for k, v in self._counts.items() if k[0] != period or v[0] == window}
            self._windows[period] = window
        seen_window, count = self._counts.get((period, key), (window, 0))
        if seen_window != window:
            count = 0
        if count >= limit:
            return False
        self._counts[(period, key)] = (window, count + 1)
        return True


class LocalRateLimit:
    """A rate-limit binding (:class:`edgerag.ports.RateLimit`) allowing ``limit`` calls per ``period`` s."""

    def __init__(
        self,
        limit: int,
        period: int,
        *,
        clock: Callable[[], float] = time.time,
        namespace: RateLimitNamespace | None = None,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise RateLimitConfigError(f'"simple.limit" must be a positive integer but got {limit!r}.')
        if isinstance(period, bool) or period not in PERIODS:
            raise RateLimitConfigError(f'"simple.period" must be either 10 or 60 but got {period!r}.')
        self.limit_value = limit
        self.period = period
        self._clock = clock
        self._namespace = RateLimitNamespace() if namespace is None else namespace

    def __repr__(self) -> str:
        return f"LocalRateLimit(limit={self.limit_value}, period={self.period})"

    @classmethod
    def from_wrangler(
        cls,
        table: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.time,
        namespace: RateLimitNamespace | None = None,
    ) -> LocalRateLimit:
        """A binding from one ``[[ratelimits]]`` table: ``{name, namespace_id, simple = {limit, period}}``."""
        if not isinstance(table, Mapping):
            raise RateLimitConfigError(f'"ratelimits" bindings should be tables, but got {table!r}')
        unknown = sorted(set(table) - _WRANGLER_KEYS)
        if unknown:
            raise RateLimitConfigError(f'"ratelimits" bindings: unexpected field(s) {unknown}')
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise RateLimitConfigError(
                f'"ratelimits" bindings must have a string "name" field but got {table!r}.'
            )
        where = f'"ratelimits" binding {name!r}'
        namespace_id = table.get("namespace_id")
        if not isinstance(namespace_id, str) or not namespace_id.isdigit() or int(namespace_id) < 1:
            raise RateLimitConfigError(
                f'{where} must have a "namespace_id" string holding a positive integer (e.g. "1001") '
                f"but got {namespace_id!r}."
            )
        simple = table.get("simple")
        if not isinstance(simple, Mapping):
            raise RateLimitConfigError(
                f'{where} must have a "simple" configuration table but got {simple!r}.'
            )
        extra = sorted(set(simple) - {"limit", "period"})
        if extra:
            raise RateLimitConfigError(f'{where} "simple" has unexpected field(s) {extra}')
        if "limit" not in simple or "period" not in simple:
            raise RateLimitConfigError(
                f'{where} "simple" needs both "limit" and "period" but got {dict(simple)!r}.'
            )
        try:
            return cls(simple["limit"], simple["period"], clock=clock, namespace=namespace)
        except RateLimitConfigError as exc:
            raise RateLimitConfigError(f"{where} {exc}") from exc

    async def limit(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> AttrDict:
        """``{"success": True}`` if this call for ``options["key"]`` is within the limit, else ``False``."""
        if options is not None and not isinstance(options, Mapping):
            raise RateLimitError("invalid rate limit options")
        opts = merge_options(options, kwargs, allowed=_OPTIONS, where="RateLimit.limit")
        key = opts.get("key")
        if key is None:
            # miniflare defaults a missing key to "", which silently puts every caller in one bucket;
            # a missing key is always a bug in our code, so it fails here.
            raise RateLimitError('invalid key: limit() needs {"key": <string>}')
        if not isinstance(key, str):
            raise RateLimitError(f"invalid key: {key!r}")
        return AttrDict(success=self._namespace.hit(key, self.limit_value, self.period, self._clock()))
