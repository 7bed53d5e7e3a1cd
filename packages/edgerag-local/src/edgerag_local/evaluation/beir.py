"""Load a BEIR-format retrieval dataset: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Format (https://github.com/beir-cellar/beir): one JSON object per line with ``_id``, ``text`` and, in
the corpus, ``title`` (``metadata`` is ignored); qrels are tab-separated ``query-id corpus-id score``
with a header line. Ids are strings (SciFact's look numeric but must not be treated as numbers).

Errors name the file and line. To support another layout, add a loader beside this one that returns
the same :class:`BeirDataset`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["BeirDataset", "BeirDocument", "BeirFormatError", "load_beir"]


class BeirFormatError(ValueError):
    """A dataset file is missing or malformed; the message names the file and line."""


class BeirDocument(NamedTuple):
    title: str
    text: str


class BeirDataset(NamedTuple):
    """Unpacks as ``corpus, queries, qrels``."""

    corpus: dict[str, BeirDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: Path | str, split: str = "train") -> BeirDataset:
    """Read the dataset in ``folder`` with the relevance judgements of ``split``."""
    root = Path(folder)
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise BeirFormatError(f"no qrels for split {split!r} in {root} (available: {available or 'none'})")
    corpus = {
        doc_id: BeirDocument(str(row.get("title") or ""), _text(row, path, line))
        for doc_id, row, path, line in _jsonl(root / "corpus.jsonl")
    }
    queries = {qid: _text(row, path, line) for qid, row, path, line in _jsonl(root / "queries.jsonl")}
    return BeirDataset(corpus, queries, _qrels(qrels_path))


def _jsonl(path: Path) -> list[tuple[str, dict[str, Any], Path, int]]:
    if not path.is_file():
        raise BeirFormatError(f"missing {path}")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise BeirFormatError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise BeirFormatError(f"{path}:{number}: expected an object with an _id")
            rows.append((str(row["_id"]), row, path, number))
    return rows


def _text(row: dict[str, Any], path: Path, line: int) -> str:
    text = row.get("text")
    if not isinstance(text, str):
        raise BeirFormatError(f"{path}:{line}: missing text")
    return text


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.rstrip("\n").split("\t")
            if not raw.strip() or (number == 1 and fields[0] == "query-id"):
                continue
            if len(fields) != 3:
                raise BeirFormatError(f"{path}:{number}: expected query-id<TAB>corpus-id<TAB>score")
            query_id, doc_id, score = fields
            try:
                qrels.setdefault(query_id, {})[doc_id] = int(score)
            except ValueError as exc:
                raise BeirFormatError(f"{path}:{number}: score {score!r} is not an integer") from exc
    return qrels
