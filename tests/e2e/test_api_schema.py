"""Schemathesis keeps the API description honest: every operation in ``/openapi.json`` is fuzzed with
all of schemathesis's checks on, against the whole local stack served over loopback, and any failure
fails the suite.

The stack runs in this test process (``edgerag_local.runtime.threaded.serve_stack``: a thread owns its event
loop and a uvicorn server on a free loopback port); schemathesis's CLI drives it from outside, so its
coverage, fuzzing and stateful phases all run, exactly as ``st run`` would against a deployment. Two
runs: the tenant routes with a valid API key (admin scope, so every route is reachable), and the
operator routes with the operator token.

The example count is bounded (``EDGERAG_SCHEMATHESIS_EXAMPLES``, default 25) and the seed fixed
(``EDGERAG_SCHEMATHESIS_SEED``) so CI is fast and repeatable; raise the count locally to search harder.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from edgerag_local.runtime.threaded import serve_stack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("EDGERAG_SCHEMATHESIS_EXAMPLES", "25"))
SEED = os.environ.get("EDGERAG_SCHEMATHESIS_SEED", "20261201")
# Guards against a hang only; not a performance threshold.
RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Served:
    base_url: str
    admin_token: str
    api_key: str


def _post(url: str, token: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        result: dict[str, object] = json.loads(reply.read())
        return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    state = tmp_path_factory.mktemp("schemathesis") / "state"
    with serve_stack(REPO, state_dir=state, name="edgerag-schemathesis") as stack:
        token = stack.admin_token
        tenant = _post(f"{stack.base_url}/v1/admin/tenants", token, {"name": "fuzz"})
        key = _post(
            f"{stack.base_url}/v1/admin/tenants/{tenant['id']}/keys",
            token,
            {"name": "schemathesis", "scopes": ["read", "write", "admin"]},
        )
        # Build the schema once before schemathesis asks for it: FastAPI keeps it, and building it on a
        # loaded machine can take longer than schemathesis waits for the first response.
        with urllib.request.urlopen(f"{stack.base_url}/openapi.json", timeout=120) as reply:
            reply.read()
        yield Served(stack.base_url, token, str(key["key"]))


def _schemathesis(
    served: Served, token: str, workdir: Path, *selection: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{served.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
        *selection,
    ]
    # Run where schemathesis may keep its example database: never in the repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=workdir, env=env, check=False
    )


def _explain(run: subprocess.CompletedProcess[str]) -> str:
    with contextlib.suppress(Exception):
        return run.stdout[-20000:] + run.stderr[-5000:]
    return "schemathesis failed"


def test_tenant_routes_conform_to_the_schema(served: Served, tmp_path: Path) -> None:
    run = _schemathesis(served, served.api_key, tmp_path, "--exclude-path-regex", "^/v1/admin")
    assert run.returncode == 0, _explain(run)
    assert " passed" in run.stdout or "No issues found" in run.stdout, _explain(run)


def test_operator_routes_conform_to_the_schema(served: Served, tmp_path: Path) -> None:
    run = _schemathesis(served, served.admin_token, tmp_path, "--include-path-regex", "^/v1/admin")
    assert run.returncode == 0, _explain(run)
