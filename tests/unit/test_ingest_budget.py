"""The ingest worker's processing budget: defaults, and bad values fail at settings load with their name."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from edgerag.settings import SettingsError, load_settings
from ingest.settings import IngestSettings


def test_budget_defaults() -> None:
    settings = load_settings(IngestSettings, SimpleNamespace(EMBEDDING_MODEL="m"))
    assert (settings.max_document_chars, settings.max_document_chunks) == (40_000_000, 30_000)
    # A 100,000-row table (MAX_TABLE_ROWS) of ~100-character rows fits with room to spare.
    assert settings.max_table_rows == 100_000
    assert settings.max_document_chars >= 100_000 * 400
    # One slice's embedding calls stay well inside a Worker invocation's subrequest budget.
    assert settings.slice_chunks / settings.embed_batch_size <= 50


def test_the_wrangler_vars_match_the_defaults() -> None:
    # The deployed worker runs with these; a drift would change the documented limits silently.
    ingest = tomllib.loads((Path(__file__).parents[2] / "workers/ingest/wrangler.toml").read_text())["vars"]
    settings = load_settings(IngestSettings, SimpleNamespace(EMBEDDING_MODEL="m"))
    assert int(ingest["MAX_DOCUMENT_CHARS"]) == settings.max_document_chars
    assert int(ingest["MAX_DOCUMENT_CHUNKS"]) == settings.max_document_chunks
    assert int(ingest["INGEST_SLICE_CHUNKS"]) == settings.slice_chunks


def test_budget_vars_are_read() -> None:
    env = SimpleNamespace(EMBEDDING_MODEL="m", MAX_DOCUMENT_CHARS="1000", MAX_DOCUMENT_CHUNKS="7")
    settings = load_settings(IngestSettings, env)
    assert (settings.max_document_chars, settings.max_document_chunks) == (1000, 7)


@pytest.mark.parametrize("name", ["MAX_DOCUMENT_CHARS", "MAX_DOCUMENT_CHUNKS", "INGEST_SLICE_CHUNKS"])
@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_bad_budget_fails_at_settings_load_naming_the_var(name: str, value: str) -> None:
    env = SimpleNamespace(EMBEDDING_MODEL="m", **{name: value})
    with pytest.raises(SettingsError, match=f"var {name}='{value}' is invalid"):
        load_settings(IngestSettings, env)


def test_ingest_takes_every_file_the_gateway_accepts() -> None:
    # A file the gateway lets in (directly or through a presigned URL) must not fail later on size.
    gateway = tomllib.loads((Path(__file__).parents[2] / "workers/gateway/wrangler.toml").read_text())["vars"]
    ingest = load_settings(IngestSettings, SimpleNamespace(EMBEDDING_MODEL="m"))
    largest = max(int(gateway["MAX_UPLOAD_BYTES"]), int(gateway["MAX_DIRECT_UPLOAD_BYTES"]))
    assert ingest.max_document_bytes >= largest
