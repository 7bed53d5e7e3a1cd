"""The local runtime reads wrangler configs the way wrangler does (bindings, vars, environments)."""

from pathlib import Path

import pytest
from edgerag_local.runtime.config import ConfigError, load_worker_config

CONFIG = """
name = "w"
main = "src/entry.py"
compatibility_date = "2026-05-26"
compatibility_flags = ["python_workers"]

[vars]
GREETING = "hi"

[[d1_databases]]
binding = "DB"
database_name = "db"
database_id = "d-1"
migrations_dir = "../migrations"

[[kv_namespaces]]
binding = "CACHE"
id = "kv-1"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[[vectorize]]
binding = "VECTORS"
index_name = "chunks"

[ai]
binding = "AI"

[[queues.producers]]
binding = "Q"
queue = "jobs"

[[queues.consumers]]
queue = "jobs"
max_batch_size = 5
dead_letter_queue = "jobs-dlq"

[[services]]
binding = "OTHER"
service = "other-worker"

[[ratelimits]]
name = "RL"
namespace_id = "1001"
simple = { limit = 10, period = 60 }

[env.staging]
name = "w-stage"
[env.staging.vars]
GREETING = "staging"
[[env.staging.kv_namespaces]]
binding = "CACHE"
id = "kv-staging"
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "w" / "wrangler.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    return path


def test_reads_every_binding_kind(config_path: Path) -> None:
    config = load_worker_config(config_path)
    assert config.name == "w"
    assert config.main == config_path.parent / "src" / "entry.py"
    assert config.vars == {"GREETING": "hi"}
    assert config.d1[0].database_id == "d-1"
    assert config.d1[0].migrations_dir == (config_path.parent.parent / "migrations").resolve()
    assert config.kv[0].id == "kv-1"
    assert config.r2[0].bucket_name == "files"
    assert config.vectorize[0].index_name == "chunks"
    assert config.ai is not None and config.ai.binding == "AI"
    assert config.producers[0].queue == "jobs"
    assert config.consumers[0].settings == {"max_batch_size": 5, "dead_letter_queue": "jobs-dlq"}
    assert config.services[0].service == "other-worker"
    assert (config.ratelimits[0].limit, config.ratelimits[0].period) == (10, 60)
    assert sorted(config.binding_names()) == ["AI", "CACHE", "DB", "FILES", "OTHER", "Q", "RL", "VECTORS"]


def test_environment_inherits_top_level_keys_but_not_bindings_or_vars(config_path: Path) -> None:
    config = load_worker_config(config_path, environment="staging")
    assert config.name == "w-stage"
    assert config.compatibility_date == "2026-05-26"
    assert config.compatibility_flags == ("python_workers",)
    assert config.vars == {"GREETING": "staging"}
    assert [kv.id for kv in config.kv] == ["kv-staging"]
    assert config.d1 == () and config.ai is None and config.services == ()


def test_unknown_environment_is_named(config_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \[env.prod\] section"):
        load_worker_config(config_path, environment="prod")


def test_missing_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_text(
        'name = "w"\nmain = "e.py"\ncompatibility_date = "2026-01-01"\n[[kv_namespaces]]\nbinding = "K"\n'
    )
    with pytest.raises(ConfigError, match=r"wrangler.toml: missing required key 'kv_namespaces.id'"):
        load_worker_config(path)


def test_wrong_type_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_text('name = "w"\nmain = "e.py"\ncompatibility_date = 20260101\n')
    with pytest.raises(ConfigError, match="'compatibility_date' must be str, got int"):
        load_worker_config(path)
