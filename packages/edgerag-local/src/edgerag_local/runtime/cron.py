"""Cron triggers for the local host: parsing ``[triggers] crons`` and the ``controller`` handlers get.

At the edge, Cloudflare calls a worker's ``scheduled(controller, env, ctx)`` for every expression in
its ``[triggers] crons``, in UTC, with ``controller.cron`` (the expression) and
``controller.scheduledTime`` (epoch milliseconds of the minute it was due). Locally
:class:`CronSchedule` says when an expression is due, :class:`CronScheduler` fires the hosted
workers' handlers while ``edgerag dev`` runs, and tests fire a tick themselves with
:meth:`edgerag_local.runtime.host.LocalStack.run_scheduled` (deterministic: no waiting for a minute).

Syntax: five fields (minute hour day-of-month month day-of-week) of ``*``, numbers, ranges
``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b``, and month/day names (``JAN``, ``MON``);
day-of-week numbers are 0-7 with 0 and 7 both Sunday. When both day fields are restricted, a day
matching either is due (as in every cron). Not emulated: Quartz extensions (``L``, ``W``, ``#``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["CronError", "CronSchedule", "CronScheduler", "ScheduledController", "parse_cron"]

log = logging.getLogger("edgerag.host")

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (low, high, names starting at low) per field
_FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


class CronError(ValueError):
    """A cron expression this runtime (and Cloudflare) would refuse; the message says which part."""


class ScheduledController:
    """What ``scheduled(controller, env, ctx)`` receives, as the SDK exposes it."""

    type = "scheduled"

    def __init__(self, cron: str, scheduled_time_ms: float) -> None:
        self.cron = cron
        self.scheduledTime = scheduled_time_ms
        self.retry_disabled = False

    def noRetry(self) -> None:
        self.retry_disabled = True

    def __repr__(self) -> str:
        return f"ScheduledController({self.cron!r}, {self.scheduledTime})"


def _value(text: str, name: str, low: int, high: int, names: list[str]) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + low
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number{' or a name' if names else ''}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: list[str]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: bad step {step_text!r}")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            start, end = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if start > end:
                raise CronError(f"{name}: range {span!r} runs backwards")
        else:
            start = _value(span, name, low, high, names)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def due(self, moment: datetime) -> bool:
        """Whether the minute containing ``moment`` (UTC) is one this schedule fires in."""
        t = moment.astimezone(UTC)
        return t.minute in self.minutes and t.hour in self.hours and self._day_due(t)

    def _day_due(self, t: datetime) -> bool:
        if t.month not in self.months:
            return False
        day_ok, weekday_ok = t.day in self.days, (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next_after(self, moment: datetime) -> datetime:
        """The first due minute strictly after ``moment``."""
        t = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=5 * 366)  # any valid expression is due within five years
        while t < limit:
            if not self._day_due(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise CronError(f"{self.expression!r} is never due")


def parse_cron(expression: str) -> CronSchedule:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"{expression!r}: expected 5 fields (minute hour day month weekday)")
    fields = [_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in fields[4])
    return CronSchedule(
        expression, fields[0], fields[1], fields[2], fields[3], weekdays, parts[2] == "*", parts[4] == "*"
    )


Fire = Callable[[str, float], Awaitable[object]]


class CronScheduler:
    """Fires ``fire(cron, scheduled_time_ms)`` for each expression when due, until cancelled."""

    def __init__(
        self,
        crons: Sequence[str],
        fire: Fire,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._schedules = [parse_cron(c) for c in crons]
        self._fire = fire
        self._clock = clock
        self._sleep = sleep

    async def run(self) -> None:
        while self._schedules:
            now = datetime.fromtimestamp(self._clock(), UTC)
            upcoming = [(s.next_after(now), s) for s in self._schedules]
            when = min(t for t, _ in upcoming)
            await self._sleep(max(0.0, when.timestamp() - self._clock()))
            for due_at, schedule in upcoming:
                if due_at == when:
                    try:
                        await self._fire(schedule.expression, when.timestamp() * 1000)
                    except Exception:  # a failing tick is the worker's; the next one still comes
                        log.exception("cron %r failed", schedule.expression)
