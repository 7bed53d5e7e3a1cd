"""Cron expressions of [triggers] crons (edgerag_local.runtime.cron) and the local scheduler."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from edgerag_local.runtime.config import ConfigError, parse_worker_config
from edgerag_local.runtime.cron import CronError, CronScheduler, parse_cron


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-01-01T00:00:00", "2026-01-01T00:15:00"),
        ("*/15 * * * *", "2026-01-01T00:14:59", "2026-01-01T00:15:00"),
        ("0 3 * * *", "2026-01-01T03:00:00", "2026-01-02T03:00:00"),
        ("30 9 * * MON-FRI", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),  # Fri after 9:30 -> Mon
        ("0 0 1 JAN *", "2026-03-01T00:00:00", "2027-01-01T00:00:00"),
        ("0 12 13 * 5", "2026-01-01T00:00:00", "2026-01-02T12:00:00"),  # day 13 OR a Friday
        ("5,10 0-1/1 * * 7", "2026-01-03T23:59:00", "2026-01-04T00:05:00"),  # 7 is Sunday too
    ],
)
def test_next_after(expression: str, after: str, expected: str) -> None:
    assert parse_cron(expression).next_after(_t(after)) == _t(expected)


@pytest.mark.parametrize(
    "expression", ["* * * *", "60 * * * *", "*/0 * * * *", "5-1 * * * *", "* * * FOO *", "0 0 30 2 *"]
)
def test_bad_or_never_due_expressions_are_refused(expression: str) -> None:
    with pytest.raises(CronError):
        parse_cron(expression).next_after(_t("2026-01-01T00:00:00"))


def test_config_reads_and_validates_triggers(tmp_path) -> None:
    base = {"name": "w", "main": "src/entry.py", "compatibility_date": "2026-01-01"}
    config = parse_worker_config({**base, "triggers": {"crons": ["*/5 * * * *"]}}, tmp_path / "wrangler.toml")
    assert config.crons == ("*/5 * * * *",)
    with pytest.raises(ConfigError, match="crons"):
        parse_worker_config({**base, "triggers": {"crons": ["every minute"]}}, tmp_path / "wrangler.toml")


async def test_scheduler_fires_due_minutes_with_their_scheduled_time() -> None:
    now = [_t("2026-01-01T00:13:30").timestamp()]
    fired: list[tuple[str, float]] = []
    slept: list[float] = []

    async def fire(cron: str, ms: float) -> None:
        fired.append((cron, ms))
        if len(fired) == 2:
            raise RuntimeError("a failing tick does not stop the scheduler")
        if len(fired) == 3:
            raise asyncio.CancelledError

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    scheduler = CronScheduler(["*/15 * * * *"], fire, lambda: now[0], sleep)
    with pytest.raises(asyncio.CancelledError):
        await scheduler.run()
    assert slept == [90.0, 900.0, 900.0]
    assert [ms for _, ms in fired] == [_t(f"2026-01-01T00:{m}:00").timestamp() * 1000 for m in (15, 30, 45)]
