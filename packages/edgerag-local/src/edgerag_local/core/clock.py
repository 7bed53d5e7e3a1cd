"""A settable clock for the emulators, so tests move time (TTLs, retry delays) without sleeping."""

from __future__ import annotations

import time

__all__ = ["ManualClock"]


class ManualClock:
    """Callable like ``time.time``; starts at the real time and moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
