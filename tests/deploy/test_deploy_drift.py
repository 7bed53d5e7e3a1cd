"""deploy-one and drift end to end: the real wrangler against the local Cloudflare API emulator.

One tenant is deployed once per module; each test then changes the "account" behind the tools' back
(through the emulator's test-only injector), checks that drift reports exactly that change, and that
``--fix`` makes it clean again, leaving the deployment clean for the next test.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator

import pytest
from edgerag_local.cfapi import CloudflareApiEmulator
from edgerag_ops.tenants import load_tenant

from .conftest import (
    ACCOUNT,
    PROBE_MIGRATION,
    REPO,
    TOKEN,
    WRANGLER,
    World,
    assert_no_token_leak,
    make_world,
    require_wrangler,
)

pytestmark = pytest.mark.wrangler

# What dedalus's MODELS_CONFIG var must hold for the local tenant (canonical JSON, compared verbatim).
LOCAL_MODELS_CONFIG = load_tenant(REPO / "tenants" / "local.toml").models_config().to_json()
GATEWAY, DEDALUS, INGEST = (
    "local-edgerag-gateway-dev",
    "local-edgerag-dedalus-dev",
    "local-edgerag-ingest-dev",
)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_wrangler()
    for world in make_world(tmp_path_factory.mktemp("deployed")):
        world.add_tenant("local")
        code, out = world.cli("deploy-one", "local")
        assert code == 0, out
        yield world


def _drift_json(world: World) -> dict:
    code, out = world.cli("drift", "local", "--json")
    report = json.loads(out)
    assert report["exit_code"] == code
    return report


def _items(world: World) -> list[tuple[str, str, str, str | None, str | None]]:
    report = _drift_json(world)["reports"][0]
    assert report["error"] is None, report["error"]
    return [(i["kind"], i["target"], i["field"], i["expected"], i["actual"]) for i in report["items"]]


def test_first_deploy_created_everything_in_order(deployed: World) -> None:
    out = deployed.all_output()
    for piece in (
        "create        queue edgerag-ingest-dlq-dev",
        "create        d1 edgerag-dev",
        "create        vectorize edgerag-chunks-dev metadata index tenant_id",
        f"migrate       d1 edgerag-dev  ({PROBE_MIGRATION})",
    ):
        assert piece in out
    # Service-binding targets first: ingest and dedalus are deployed before the gateway.
    order = [line.split()[2] for line in deployed.lines if re.match(r"local/dev: deploy ", line)]
    assert order == [INGEST, DEDALUS, GATEWAY]
    record = json.loads((deployed.work / "deployments" / "local-dev.json").read_text())
    assert record["workers"]["gateway"]["name"] == GATEWAY
    assert PROBE_MIGRATION in record["migrations_applied"]


def test_drift_is_clean_right_after_deploy(deployed: World) -> None:
    code, out = deployed.cli("drift", "local")
    assert code == 0, out
    assert "local (dev): clean" in out


def test_second_deploy_changes_nothing(deployed: World) -> None:
    before = deployed.api.state.snapshot()
    record = (deployed.work / "deployments" / "local-dev.json").read_bytes()
    code, out = deployed.cli("deploy-one", "local")
    assert code == 0, out
    assert "already matches the repository; nothing changed" in out
    assert deployed.api.state.snapshot() == before
    assert (deployed.work / "deployments" / "local-dev.json").read_bytes() == record


def _var(api: CloudflareApiEmulator) -> None:
    api.inject.set_var(ACCOUNT, GATEWAY, "LOG_LEVEL", "trace")


def _models(api: CloudflareApiEmulator) -> None:
    # Someone "fixes" routing in the dashboard: the JSON var differs from what the tenant file renders.
    api.inject.set_var(ACCOUNT, DEDALUS, "MODELS_CONFIG", '{"models":{"chat":"gpt-4o"}}')


def _binding(api: CloudflareApiEmulator) -> None:
    api.inject.set_binding(ACCOUNT, GATEWAY, "FILES", bucket_name="someone-elses-bucket")


def _queue(api: CloudflareApiEmulator) -> None:
    api.inject.set_consumer(ACCOUNT, "edgerag-ingest-dev", INGEST, max_retries=9)


def _dlq(api: CloudflareApiEmulator) -> None:
    api.inject.set_consumer(ACCOUNT, "edgerag-ingest-dev", INGEST, dead_letter_queue=None)


def _migration(api: CloudflareApiEmulator) -> None:
    api.inject.drop_migration(ACCOUNT, "edgerag-dev", PROBE_MIGRATION, undo_sql="DROP TABLE drift_probe;")


def _compat(api: CloudflareApiEmulator) -> None:
    api.inject.set_compatibility_date(ACCOUNT, DEDALUS, "2025-01-01")


def _removed(api: CloudflareApiEmulator) -> None:
    api.inject.remove_binding(ACCOUNT, GATEWAY, "DEDALUS")


def _metrics(api: CloudflareApiEmulator) -> None:
    # The metrics binding re-pointed at another Analytics Engine dataset in the dashboard.
    api.inject.set_binding(ACCOUNT, GATEWAY, "METRICS", dataset="someone_elses_metrics")


def _metadata_index(api: CloudflareApiEmulator) -> None:
    api.inject.drop_metadata_index(ACCOUNT, "edgerag-chunks-dev", "document_id")


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        (_var, [("var", GATEWAY, "LOG_LEVEL", "debug", "trace")]),
        (
            _models,
            [("var", DEDALUS, "MODELS_CONFIG", LOCAL_MODELS_CONFIG, '{"models":{"chat":"gpt-4o"}}')],
        ),
        (
            _binding,
            [
                (
                    "binding",
                    GATEWAY,
                    "FILES",
                    "r2_bucket(bucket_name=edgerag-files-dev)",
                    "r2_bucket(bucket_name=someone-elses-bucket)",
                )
            ],
        ),
        (_queue, [("queue-consumer", "edgerag-ingest-dev", "max_retries", "3", "9")]),
        (
            _dlq,
            [("queue-consumer", "edgerag-ingest-dev", "dead_letter_queue", "edgerag-ingest-dlq-dev", None)],
        ),
        (_migration, [("migration", "edgerag-dev", PROBE_MIGRATION, "applied", "not applied")]),
        (_compat, [("compatibility", DEDALUS, "compatibility_date", "2026-05-26", "2025-01-01")]),
        (_removed, [("binding", GATEWAY, "DEDALUS", "service(service=local-edgerag-dedalus-dev)", None)]),
        (
            _metadata_index,
            [("vectorize", "edgerag-chunks-dev", "metadata_index.document_id", "string", None)],
        ),
        (
            _metrics,
            [
                (
                    "binding",
                    GATEWAY,
                    "METRICS",
                    "analytics_engine(dataset=local_edgerag_metrics_dev)",
                    "analytics_engine(dataset=someone_elses_metrics)",
                )
            ],
        ),
    ],
    ids=[
        "var",
        "models-config",
        "binding",
        "queue-setting",
        "dead-letter-queue",
        "migration",
        "compat-date",
        "binding-removed",
        "metadata-index",
        "metrics-dataset",
    ],
)
def test_injected_change_is_reported_exactly_and_fixed(
    deployed: World, inject: Callable[[CloudflareApiEmulator], None], expected: list[tuple[str, ...]]
) -> None:
    inject(deployed.api)
    assert _items(deployed) == expected
    code, table = deployed.cli("drift", "local")
    assert code == 1
    assert expected[0][2] in table

    code, out = deployed.cli("drift", "local", "--fix")
    assert code == 0, out
    assert "fixed by redeploying" in out
    assert _items(deployed) == []


def test_fixed_migration_really_ran_again(deployed: World) -> None:
    _migration(deployed.api)
    code, out = deployed.cli("drift", "local", "--fix")
    assert code == 0, out
    database = next(
        d for d in deployed.api.state.account(ACCOUNT)["d1"].values() if d["name"] == "edgerag-dev"
    )
    engine = deployed.api.state.d1_engine(database["uuid"])
    assert engine.run([("SELECT name FROM sqlite_master WHERE name = 'drift_probe'", [])])[0].rows == [
        ["drift_probe"]
    ]


def test_code_change_in_the_repository_is_drift(deployed: World) -> None:
    core = deployed.repo / "packages" / "edgerag" / "src" / "edgerag" / "_drift_probe.py"
    core.write_text("MARK = 1\n")  # every worker vendors the shared core, so every bundle changes
    try:
        found = {(kind, target, name) for kind, target, name, _, _ in _items(deployed)}
        assert found == {("code", w, "workers/tag") for w in (DEDALUS, GATEWAY, INGEST)}
    finally:
        core.unlink()
    assert _items(deployed) == []


def test_failed_deploy_says_how_to_roll_back_and_the_advice_works(deployed: World) -> None:
    _var(deployed.api)  # gateway needs a redeploy ...
    deployed.api.inject.set_var(ACCOUNT, INGEST, "CHUNK_MAX_TOKENS", "1")  # ... and so does ingest
    previous = deployed.api.state.account(ACCOUNT)["scripts"][INGEST]["deployments"][0]["versions"][0][
        "version_id"
    ]
    deployed.api.inject.fail_uploads(ACCOUNT, GATEWAY)
    try:
        code, out = deployed.cli("deploy-one", "local")
    finally:
        deployed.api.inject.fail_uploads(ACCOUNT, GATEWAY, fail=False)
    assert code == 1
    assert f"failed at deploy {GATEWAY}" in out
    advice = [line.strip() for line in out.splitlines() if "npx wrangler" in line]
    assert len(advice) == 1, out  # only ingest changed: the gateway upload was refused
    rollback = advice[0]
    assert f"rollback {previous} --name {INGEST}" in rollback
    # Follow the advice with the real wrangler: the ingest worker serves its previous version again.
    words = shlex.split(rollback)
    command = words[words.index("wrangler") + 1 :]
    env = {
        **deployed.environ,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "WRANGLER_LOG_PATH": str(deployed.work / "logs"),
        "WRANGLER_SEND_METRICS": "false",
    }
    done = subprocess.run(
        [str(WRANGLER), *command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    active = deployed.api.state.account(ACCOUNT)["scripts"][INGEST]["deployments"][0]["versions"][0][
        "version_id"
    ]
    assert active == previous
    code, out = deployed.cli("drift", "local", "--fix")
    assert code == 0, out


def test_dry_run_changes_nothing(deployed: World) -> None:
    _var(deployed.api)
    before = deployed.api.state.snapshot()
    code, out = deployed.cli("deploy-one", "local", "--dry-run")
    assert code == 0, out
    assert f"would-deploy  {GATEWAY}" in out
    assert "dry run: 1 change(s) would be made" in out
    assert deployed.api.state.snapshot() == before
    code, out = deployed.cli("drift", "local", "--fix")
    assert code == 0, out


def test_token_never_leaks(deployed: World) -> None:
    assert TOKEN not in json.dumps(deployed.api.state.snapshot())
    assert_no_token_leak(deployed)


def test_dry_run_of_a_new_tenant_plans_everything_and_creates_nothing(world: World) -> None:
    require_wrangler()
    world.add_tenant("local")
    code, out = world.cli("deploy-one", "local", "--dry-run")
    assert code == 0, out
    planned = [line.split()[1] for line in out.splitlines() if line.startswith("local/dev: would-")]
    migrations = len(list(world.migrations.glob("*.sql")))
    assert planned.count("would-create") == 8 and planned.count("would-deploy") == 3
    assert planned.count("would-migrate") == migrations
    assert f"dry run: {11 + migrations} change(s) would be made; nothing was changed" in out
    writes = [call for call in world.api.router.calls if not call.startswith("GET ")]
    assert writes == []
