"""Keyword (FTS5 bm25) quality and cost per query-handling choice on SciFact train (not a test;
prints a table).

    .venv/bin/python benchmarks/bench_ingest.py --state DIR      # ingests the corpus once
    .venv/bin/python benchmarks/bench_fts_terms.py --state DIR

Runs the keyword retriever's own SQL (:func:`edgerag.retrieval.hybrid.keyword_query`) against a copy of
the ingested D1 database with Python's sqlite3, so the figures are SQLite's work per query (what D1
spends), without the HTTP stack: nDCG@10 / Recall@100 of the keyword ranking (a document ranks as its
best chunk) and SQLite CPU time per query (``time.process_time``: the load of other processes on the
machine changes it less than wall time). Rows vary one choice at a time from the shipped defaults:
stop-word list, term cap, title weight, and the ranking SQL (``ORDER BY rank`` vs ``ORDER BY bm25()``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgerag.retrieval import fts_query
from edgerag.retrieval.fts_query import FtsQueryLimits, parse_query
from edgerag.retrieval.hybrid import SearchRequest, keyword_query
from edgerag_local.evaluation import evaluate, load_beir

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "scifact-train"
DEFAULT_STATE = ROOT / ".edgerag" / "bench-scifact"

# The list before the extended one shipped (kept here so the comparison stays reproducible).
SMALL_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have how i in is it its of on or that the their there these "
    "this to was were what when where which who why will with".split()
)


def _legacy_sql(sql: str, title_weight: float) -> str:
    """The same query ranked the old way: ORDER BY bm25() over every match."""
    return sql.replace(" AND chunks_fts.rank MATCH ?3", " AND ?3 IS NOT NULL").replace(
        "ORDER BY chunks_fts.rank", f"ORDER BY bm25(chunks_fts, {title_weight!r}, 1.0)"
    )


def run_config(
    db: sqlite3.Connection,
    tenant: str,
    queries: dict[str, str],
    owner: dict[str, str],
    *,
    stopwords: frozenset[str],
    max_terms: int,
    title_weight: float,
    legacy: bool = False,
) -> tuple[dict[str, list[str]], list[float], float]:
    limits = FtsQueryLimits(max_terms=max_terms)
    run: dict[str, list[str]] = {}
    cpu: list[float] = []
    terms: list[int] = []
    for qid, text in queries.items():
        request = SearchRequest(
            tenant_id=tenant, query=text, top_k=100, mode="keyword", title_weight=title_weight
        )
        parsed = parse_query(text, limits=limits, stopwords=stopwords)
        terms.append(len(parsed.terms))
        built = keyword_query(request, 100)
        assert built is not None
        sql, params = built
        params[0] = parsed.match_expression()
        if legacy:
            sql = _legacy_sql(sql, title_weight)
        began = time.process_time()
        rows = db.execute(sql, params).fetchall()
        cpu.append((time.process_time() - began) * 1000)
        ranked: list[str] = []
        for (chunk_id,) in rows:
            doc = owner.get(chunk_id)
            if doc is not None and doc not in ranked:
                ranked.append(doc)
        run[qid] = ranked
    return run, cpu, statistics.mean(terms)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--queries", type=int, default=None, help="only the first N train queries")
    args = parser.parse_args()
    sources = sorted((args.state / "d1").glob("*.sqlite"))
    if not sources or not (args.state / "corpus-map.json").is_file():
        sys.exit(f"no ingested corpus in {args.state}: run benchmarks/bench_ingest.py first")
    dataset = load_beir(DATASET)
    queries = {q: t for q, t in dataset.queries.items() if q in dataset.qrels}
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    mapping: dict[str, str] = json.loads((args.state / "corpus-map.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "d1.sqlite"
        source = sqlite3.connect(f"file:{sources[0]}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        source.backup(target)
        source.close()
        target.close()
        db = sqlite3.connect(copy)
        tenant = db.execute("SELECT tenant_id FROM chunks GROUP BY 1 ORDER BY count(*) DESC").fetchone()[0]
        owner = {
            cid: mapping[did]
            for cid, did in db.execute("SELECT id, document_id FROM chunks")
            if did in mapping
        }
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        shipped = fts_query.STOPWORDS
        configs: list[tuple[str, dict[str, Any]]] = [
            ("shipped: extended stop words, 16 terms, title 2, ORDER BY rank", {}),
            ("at most 32 terms", {"max_terms": 32}),
            ("ORDER BY bm25() (before)", {"legacy": True}),
            ("small stop-word list (before)", {"stopwords": SMALL_STOPWORDS}),
            ("no stop words", {"stopwords": frozenset()}),
            ("at most 12 terms", {"max_terms": 12}),
            ("at most 8 terms", {"max_terms": 8}),
            ("title weight 1", {"title_weight": 1.0}),
            ("title weight 3", {"title_weight": 3.0}),
            ("title weight 5", {"title_weight": 5.0}),
        ]
        print(f"\nKeyword retriever on {len(queries)} SciFact train queries, {chunks} chunks\n")
        print("| configuration | terms/query | nDCG@10 | Recall@100 | SQLite CPU p50 | p95 |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, overrides in configs:
            options: dict[str, Any] = {
                "stopwords": shipped,
                "max_terms": 16,
                "title_weight": 2.0,
                **overrides,
            }
            run, cpu, terms = run_config(db, tenant, queries, owner, **options)
            scores = evaluate(run, dataset.qrels)
            print(
                f"| {name} | {terms:.1f} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} "
                f"| {pct(cpu, 0.5):.2f} ms | {pct(cpu, 0.95):.2f} ms |"
            )
        # Long natural-language input (five train queries run together, ~45 content words): the term
        # cap is what keeps these fast. Only the cost is meaningful here (no judgements for the mix).
        texts = list(queries.values())
        long_queries = {str(i): " ".join(texts[i : i + 5]) for i in range(0, min(len(texts), 1000), 5)}
        print(f"\nLong queries ({len(long_queries)} of five train queries each)\n")
        print("| term cap | terms/query | SQLite CPU p50 | p95 |")
        print("|---:|---:|---:|---:|")
        for cap in (64, 32, 16, 12):
            _run, cpu, terms = run_config(
                db, tenant, long_queries, owner, stopwords=shipped, max_terms=cap, title_weight=2.0
            )
            print(f"| {cap} | {terms:.1f} | {pct(cpu, 0.5):.2f} ms | {pct(cpu, 0.95):.2f} ms |")
        db.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
