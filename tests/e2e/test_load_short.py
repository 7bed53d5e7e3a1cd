"""The load test (benchmarks/load.py) in its short bounded mode: counts, never timings.

Two runs at once, each its own stack process on loopback: 8 tenants for 10 s with no faults, and
8 tenants for 5 s with faults injected (D1 errors, ingest consumer crashes before and after the chunk
write, provider 500s and stalls; load.DEFAULT_FAULTS). Each writes its summary as JSON; the tests
assert on it:

- 0 unintended errors (every non-2xx is either the over-limit tenant's 429 ``request-limit`` with
  ``Retry-After``, or — with faults — a 5xx problem the stack attributes to an injected fault);
- the over-limit tenant was refused (intended 429s happen and are counted apart);
- every route of the mix answered successfully at least once;
- every accepted upload ended ``ready`` (with faults: ``ready``, or ``failed`` with the give-up reason
  after the queue's retries, the designed outcome), none lost, no duplicated chunk, and chunk rows,
  FTS rows and vectors all equal to the chunker's count for the text sent;
- with faults: the crash after the chunk write and the provider's 500 and stall really happened.

The runs are bounded by ``--duration`` and ``--settle``; the subprocess timeout only guards against a
hang.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOAD = REPO / "benchmarks" / "load.py"
RUN_TIMEOUT_S = 600  # a hang guard, not a performance threshold
ROUTES = ("search", "chat_json", "chat_sse", "upload", "status")


def _start(out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(LOAD), "--clients", "8", "--no-warm-up", "--json", str(out), *extra]
    return subprocess.Popen(
        command, cwd=LOAD.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("load")
    outputs = {"plain": tmp / "plain.json", "faults": tmp / "faults.json"}
    processes = {
        "plain": _start(outputs["plain"], "--duration", "10", "--settle", "60"),
        "faults": _start(
            outputs["faults"], "--duration", "5", "--settle", "90", "--faults", "--provider-timeout", "3"
        ),
    }
    logs: dict[str, str] = {}
    try:
        for name, process in processes.items():
            try:
                logs[name], _ = process.communicate(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                logs[name], _ = process.communicate()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    summaries: dict[str, dict[str, Any]] = {}
    for name, log in logs.items():
        assert outputs[name].exists(), f"the {name} load run wrote no summary:\n{log[-5000:]}"
        summaries[name] = {**json.loads(outputs[name].read_text()), "log": log}
    yield summaries


def _explain(summary: dict[str, Any]) -> str:
    return (
        json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=1)[-6000:]
        + summary["log"][-3000:]
    )


@pytest.mark.parametrize("mode", ["plain", "faults"])
def test_no_unintended_errors_and_the_intended_429s_are_counted_apart(
    runs: dict[str, dict[str, Any]], mode: str
) -> None:
    summary = runs[mode]
    assert summary["unintended"] == 0, _explain(summary)
    assert summary["intended_429"] >= 1, _explain(summary)
    for route in ROUTES:
        assert summary["routes"][route]["ok"] >= 1, (route, _explain(summary))
    if mode == "plain":
        assert summary["outcomes"].get("injected", 0) == 0, _explain(summary)


@pytest.mark.parametrize("mode", ["plain", "faults"])
def test_every_accepted_upload_is_accounted_for_with_one_copy_of_each_chunk(
    runs: dict[str, dict[str, Any]], mode: str
) -> None:
    documents = runs[mode]["documents"]
    explain = _explain(runs[mode])
    assert documents["accepted"] >= 8, explain  # each client uploads first
    assert documents["lost"] == 0 and documents["unaccepted_stuck"] == 0, explain
    assert documents["duplicated_chunks"] == 0 and documents["inconsistent_index"] == 0, explain
    if mode == "plain":
        assert documents["ready"] == documents["accepted"], explain
    else:
        assert documents["ready"] + documents["failed"] == documents["accepted"], explain
        assert set(documents["failed_reasons"]) <= {"gave up after the queue's retries"}, explain
    assert runs[mode]["verdict"] == [], explain


def test_the_faults_were_really_injected(runs: dict[str, dict[str, Any]]) -> None:
    injected = runs["faults"]["injected_faults"]
    explain = _explain(runs["faults"])
    assert injected["crashes"].get("crash_after_write", 0) >= 1, explain
    assert injected["provider"].get("500", 0) >= 1 and injected["provider"].get("stall", 0) >= 1, explain
    assert injected["provider_hangups"] >= 1, explain  # the stalled call was abandoned at its timeout
