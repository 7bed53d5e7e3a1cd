"""Settings parse once from env vars; a missing or malformed var fails with its name."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from edgerag.settings import SettingsError, load_settings, positive_int, var


@dataclass(frozen=True)
class Example:
    model: str = var("MODEL")
    batch: int = var("BATCH", positive_int, 10)


def test_defaults_and_parsing() -> None:
    assert load_settings(Example, SimpleNamespace(MODEL="m")) == Example("m", 10)
    assert load_settings(Example, SimpleNamespace(MODEL="m", BATCH="7")).batch == 7


def test_missing_required_var_is_named() -> None:
    with pytest.raises(SettingsError, match="missing required var MODEL"):
        load_settings(Example, SimpleNamespace())


@pytest.mark.parametrize("value", ["0", "-3", "ten"])
def test_malformed_var_is_named_with_its_value(value: str) -> None:
    with pytest.raises(SettingsError, match=f"var BATCH='{value}' is invalid"):
        load_settings(Example, SimpleNamespace(MODEL="m", BATCH=value))


def test_same_vars_give_the_cached_object() -> None:
    first = load_settings(Example, SimpleNamespace(MODEL="cached"))
    assert load_settings(Example, SimpleNamespace(MODEL="cached")) is first


def test_ingest_rejects_overlap_not_below_chunk_size() -> None:
    from ingest.settings import IngestSettings

    env = SimpleNamespace(EMBEDDING_MODEL="m", CHUNK_MAX_TOKENS="100", CHUNK_OVERLAP_TOKENS="100")
    with pytest.raises(SettingsError, match="CHUNK_MAX_TOKENS/CHUNK_OVERLAP_TOKENS"):
        load_settings(IngestSettings, env)
