"""Every wrangler command the runbooks and deploy rely on works against the API emulator.

deploy-one itself creates resources through the API client; these prove the emulator also answers
the operator's own ``wrangler`` commands (create, list, versions, deployments, rollback) the way the
runbooks show them, with real wrangler 4.86 and no network.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edgerag_local.cfapi import CloudflareApiEmulator

from .conftest import ACCOUNT, TOKEN, WRANGLER, require_wrangler

pytestmark = pytest.mark.wrangler


@pytest.fixture
def wrangler(tmp_path: Path) -> Iterator[tuple[CloudflareApiEmulator, Callable[..., str]]]:
    require_wrangler()
    project = tmp_path / "probe"
    (project / "src").mkdir(parents=True)
    (project / "src" / "entry.py").write_text("from workers import WorkerEntrypoint\n")
    (project / "wrangler.toml").write_text(
        'name = "probe"\nmain = "src/entry.py"\ncompatibility_date = "2026-05-26"\n'
        'compatibility_flags = ["python_workers"]\n\n[vars]\nGREETING = "hello"\n'
    )
    with CloudflareApiEmulator(tmp_path / "cfapi") as api:
        api.add_token(TOKEN, ACCOUNT)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(tmp_path / "home"),
            "CLOUDFLARE_API_BASE_URL": api.base_url,
            "CLOUDFLARE_API_TOKEN": TOKEN,
            "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_LOG_PATH": str(tmp_path / "logs"),
        }

        def run(*args: str) -> str:
            done = subprocess.run(
                [str(WRANGLER), *args],
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        yield api, run
        assert api.router.unknown == []


def test_resource_commands(wrangler: tuple[CloudflareApiEmulator, Callable[..., str]]) -> None:
    api, run = wrangler
    run("d1", "create", "probe-db")
    run("kv", "namespace", "create", "probe-kv")
    run("r2", "bucket", "create", "probe-bucket")
    run("vectorize", "create", "probe-idx", "--dimensions", "768", "--metric", "cosine")
    run(
        "vectorize",
        "create-metadata-index",
        "probe-idx",
        "--propertyName",
        "tenant_id",
        "--type",
        "string",
    )
    run("queues", "create", "probe-q")
    account = api.state.account(ACCOUNT)
    assert [d["name"] for d in account["d1"].values()] == ["probe-db"]
    assert [k["title"] for k in account["kv"].values()] == ["probe-kv"]
    assert list(account["r2"]) == ["probe-bucket"]
    assert account["vectorize"]["probe-idx"]["config"] == {"dimensions": 768, "metric": "cosine"}
    assert account["vectorize"]["probe-idx"]["metadata_indexes"] == [
        {"propertyName": "tenant_id", "indexType": "string"}
    ]
    assert [q["queue_name"] for q in account["queues"].values()] == ["probe-q"]
    listed = json.loads(run("d1", "list", "--json"))
    assert [d["name"] for d in listed] == ["probe-db"]
    assert "probe-kv" in run("kv", "namespace", "list")


def test_deploy_versions_deployments_and_rollback(
    wrangler: tuple[CloudflareApiEmulator, Callable[..., str]],
) -> None:
    api, run = wrangler
    run("deploy", "--tag", "first")
    run("deploy", "--tag", "second", "--var", "GREETING:changed")
    versions = json.loads(run("versions", "list", "--json"))
    tags = {v["annotations"].get("workers/tag"): v["id"] for v in versions}
    assert set(tags) == {"first", "second"}
    deployments = json.loads(run("deployments", "list", "--json"))
    assert deployments[-1]["versions"][0]["version_id"] == tags["second"]

    run("rollback", tags["first"], "-m", "back to first", "-y")
    settings = api.state.account(ACCOUNT)["scripts"]["probe"]
    assert settings["deployments"][0]["versions"][0]["version_id"] == tags["first"]
    assert settings["deployments"][0]["annotations"]["workers/message"] == "back to first"


def test_delete_a_worker(wrangler: tuple[CloudflareApiEmulator, Callable[..., str]]) -> None:
    api, run = wrangler
    run("deploy")
    assert "Successfully deleted probe" in run("delete", "probe")
    assert api.state.account(ACCOUNT)["scripts"] == {}
