"""``POST /v1/answer`` latency by path (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_answer.py [--runs 100] [--docs 40]

The whole local stack runs in this process (local D1, KV, Vectorize, the WordLlama embedding model,
and the local text-generation stand-in — the extractive responder, not a language model — behind
dedalus over the local service binding). Requests go through the gateway's real ASGI app with an API
key; each kind is interleaved run by run:

- ``grounded (model call)``: a question never asked before (``"cache": false`` is not needed: the text
  is new) — safety check, query embedding, hybrid search, chunk texts, source screening, the prompt,
  one dedalus call (routing, the stand-in, the usage row), citation check, confidence, follow-ups,
  then an answer-cache write;
- ``answer cache hit``: the same question again (safety check, generation read, one KV read);
- ``nothing relevant``: a question no document matches (search, then the fixed reply; no model call);
- ``chit-chat``: "thanks!" (safety check and intent only);
- ``GET /v1/keys (floor)``: authentication, the rate limiter, one D1 read — what every request pays.

The stand-in answers in well under a millisecond, so ``grounded`` is the gateway's and dedalus's own
overhead around a model call, not model latency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from _stack import bench_stack

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "rocket engine nozzle thrust orbit satellite fuel oxygen kerosene combustion chamber pressure "
    "turbine pump valve cooling heat shield reentry landing booster stage payload fairing guidance"
).split()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _doc(n: int) -> str:
    sentences = []
    for s in range(6):
        picked = [WORDS[(n * 7 + s * 5 + i * 3) % len(WORDS)] for i in range(10)]
        sentences.append(" ".join(picked).capitalize() + ".")
    return " ".join(sentences)


async def main(runs: int, docs: int) -> None:
    async with bench_stack("standard", "read write chat admin", http_timeout_s=60) as bench:
        stack, clock, client = bench.stack, bench.clock, bench.client
        for n in range(docs):
            reply = await client.post("/v1/documents", json={"title": f"Doc {n}", "text": _doc(n)})
            reply.raise_for_status()
        await stack.drain_queues()

        timings: dict[str, list[float]] = {
            "grounded (model call)": [],
            "answer cache hit": [],
            "nothing relevant": [],
            "chit-chat": [],
            "GET /v1/keys (floor)": [],
        }
        sent = 0

        async def timed(kind: str, question: str = "") -> None:
            nonlocal sent
            sent += 1
            if sent % 200 == 0:
                clock.advance(3600)  # a new hour: stay under the plan's and the burst limits
                # ... which also expires the cached answer (ANSWER_TTL_S is an hour): cache it again.
                (await client.post("/v1/answer", json={"question": repeated})).raise_for_status()
            began = time.perf_counter()
            if kind.startswith("GET"):
                (await client.get("/v1/keys")).raise_for_status()
                timings[kind].append((time.perf_counter() - began) * 1000)
                return
            reply = await client.post("/v1/answer", json={"question": question})
            elapsed = (time.perf_counter() - began) * 1000
            reply.raise_for_status()
            body = reply.json()
            expected = {
                "grounded (model call)": lambda: bool(body["citations"]) and not body["cached"],
                "answer cache hit": lambda: body["cached"],
                "nothing relevant": lambda: body["model"] is None and body["intent"] == "question",
                "chit-chat": lambda: body["intent"] == "chit_chat",
            }[kind]
            if not expected():
                raise SystemExit(f"{kind}: unexpected reply {body}")
            timings[kind].append(elapsed)

        repeated = "How does the rocket nozzle make thrust?"
        await client.post("/v1/answer", json={"question": repeated})  # now cached
        for n in range(runs):
            fresh = f"How do {WORDS[n % len(WORDS)]} and {WORDS[(n * 5 + 1) % len(WORDS)]} work? ({n})"
            await timed("grounded (model call)", fresh)
            await timed("answer cache hit", repeated)
            await timed("nothing relevant", "What is the capital city of Mars?")
            await timed("chit-chat", "thanks!")
            await timed("GET /v1/keys (floor)")

    print(f"POST /v1/answer, {docs} documents, {runs} runs each, Python {sys.version.split()[0]}\n")
    print("| request | p50 ms | p95 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for kind, values in timings.items():
        print(
            f"| {kind} | {_pct(values, 0.5):.2f} | {_pct(values, 0.95):.2f} | {_pct(values, 0.99):.2f} "
            f"| {statistics.fmean(values):.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--docs", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.docs))
