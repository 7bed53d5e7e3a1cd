"""Chunking throughput on natural and adversarial text (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_chunking.py [--mb 9] [--before] [--before-sizes 50000 100000]

Chunks, with the default settings and the default token estimator, natural prose (the SciFact corpus
at ../shared/datasets/scifact-train/corpus.jsonl, else generated prose), the 9 MB issue-7 poison
(``"a" * 9_000_000``: one "word" with no whitespace), one huge sentence of short words, many tiny
paragraphs, a run of punctuation, and CJK without spaces, and reports MB/s (of UTF-8 input) and the
chunks made. Each case is timed once (best of ``--repeat``) on ``--mb`` megabytes.

``--before`` also times the chunker as it was before issue 7 (``git show <rev>:<chunking.py>``,
default rev ``359412a~1``) on the small sizes it can finish, to show how its time grew with the input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from edgerag.chunking import chunk_text

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact-train" / "corpus.jsonl"
CHUNKING = "packages/edgerag/src/edgerag/chunking.py"
BEFORE_REV = "359412a~1"  # the commit before the linear chunker


def prose(chars: int) -> tuple[str, str]:
    if SCIFACT.is_file():
        parts: list[str] = []
        total = 0
        with SCIFACT.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                parts.append(f"{record['title']}\n\n{record['text']}")
                total += len(parts[-1]) + 2
                if total >= chars:
                    break
        text = "\n\n".join(parts)
        while len(text) < chars:  # the corpus is ~7.5 MB: repeat it for larger sizes
            text = f"{text}\n\n{text}"
        return "SciFact prose", text[:chars]
    sentence = "The committee reviewed the results of the trial and found no significant effect. "
    return "generated prose", (sentence * (chars // len(sentence) + 1))[:chars]


CASES: dict[str, Callable[[int], str]] = {
    "poison: one 'word' (a * n)": lambda n: "a" * n,
    "one huge sentence of words": lambda n: "word " * (n // 5),
    "many tiny paragraphs": lambda n: "a\n\n" * (n // 3),
    "a run of punctuation": lambda n: "." * n,
    "CJK without spaces": lambda n: ("日本語の文章を分割する" * (n // 33 + 1))[: n // 3],  # ~n bytes
}


def timed(chunker: Callable[[str], list[object]], text: str, repeat: int) -> tuple[float, int]:
    best, chunks = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        chunks = len(chunker(text))
        best = min(best, time.perf_counter() - started)
    return best, chunks


def run(megabytes: float, repeat: int) -> list[dict[str, object]]:
    size = int(megabytes * 1_000_000)
    label, text = prose(size)
    inputs = [(label, text)] + [(name, make(size)) for name, make in CASES.items()]
    rows: list[dict[str, object]] = []
    for name, sample in inputs:
        seconds, chunks = timed(chunk_text, sample, repeat)
        megabytes_in = len(sample.encode("utf-8")) / 1e6
        rows.append(
            {
                "input": name,
                "MB": round(megabytes_in, 2),
                "seconds": seconds,
                "MB/s": megabytes_in / seconds,
                "chunks": chunks,
            }
        )
    return rows


def load_before(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:{CHUNKING}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "chunking_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("chunking_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def run_before(rev: str, sizes: list[int]) -> list[dict[str, object]]:
    before = load_before(rev)
    rows: list[dict[str, object]] = []
    for size in sizes:
        for name, make in (
            ("poison: one 'word' (a * n)", CASES["poison: one 'word' (a * n)"]),
            ("a run of punctuation", CASES["a run of punctuation"]),
        ):
            if name.startswith("a run") and size > 20_000:
                continue  # quadratic in the regex: 20k characters already take seconds
            sample = make(size)
            seconds, chunks = timed(before.chunk_text, sample, 1)
            after, _ = timed(chunk_text, sample, 1)
            rows.append(
                {
                    "input": name,
                    "chars": size,
                    "before s": seconds,
                    "after s": after,
                    "before MB/s": len(sample) / seconds / 1e6,
                    "chunks": chunks,
                }
            )
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    headers = list(rows[0])

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(row[h]) for h in headers) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=9.0, help="megabytes of each input (default 9)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", action="store_true", help="also time the pre-issue-7 chunker")
    parser.add_argument("--before-rev", default=BEFORE_REV)
    parser.add_argument(
        "--before-sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000, 200_000, 400_000]
    )
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, default ChunkingSettings (400/60/512), estimate_tokens")
    print(format_table(run(args.mb, args.repeat)))
    if args.before:
        print()
        print(format_table(run_before(args.before_rev, args.before_sizes)))


if __name__ == "__main__":
    main()
