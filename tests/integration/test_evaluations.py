"""/v1/evaluations on the whole local stack: metrics computed by hand on a tiny corpus, the same
rankings as POST /v1/search, stored runs, comparison, paging with strict cursors, bounds, other
tenants' documents and runs, scopes, and malformed input answered with 4xx problems (never a 500)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from edgerag.evaluation import mrr_at_k, ndcg_at_k, recall_at_k
from gateway.paging import encode_cursor

from .conftest import StackHarness, Tenant

LOG2_3 = math.log2(3)
PROBLEM = "application/problem+json"

# Each keyword query below matches exactly one of these (no shared content words), so the keyword
# rankings are known without running anything: that is what the hand-computed metrics rely on.
DOCS = {
    "Rocket engines": "Liquid rocket engines burn kerosene and liquid oxygen; the nozzle makes thrust.",
    "Sourdough": "Sourdough bread rises with wild yeast and lactic bacteria kept alive in a starter.",
    "Tides": "Ocean tides follow the moon: its gravity pulls the water into two bulges every day.",
    "Volcanoes": "Volcanoes erupt when magma breaks the crust; basalt lava flows far.",
}


async def _corpus(harness: StackHarness, name: str = "acme") -> tuple[Tenant, dict[str, str]]:
    tenant = await harness.tenant(name)
    ids = {}
    for title, text in DOCS.items():
        reply = await tenant.client.post("/v1/documents", json={"title": title, "text": text})
        assert reply.status_code == 202, reply.text
        ids[title] = reply.json()["document"]["id"]
    await harness.ingest()
    return tenant, ids


def _run(queries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"queries": queries, **extra}


async def test_keyword_metrics_match_a_hand_computation(harness: StackHarness) -> None:
    acme, ids = await _corpus(harness)
    body = _run(
        [
            # ranking [Rocket]; relevant Rocket (1) and Sourdough (2, never retrieved)
            {
                "id": "rocket",
                "query": "nozzle thrust",
                "judgements": [
                    {"title": "Rocket engines", "relevance": 1},
                    {"document_id": ids["Sourdough"], "relevance": 2},
                ],
            },
            # ranking [Tides]; only Volcanoes relevant, Tides judged not relevant (grade 0)
            {
                "id": "tides",
                "query": "moon gravity",
                "judgements": [{"title": "Volcanoes"}, {"document_id": ids["Tides"], "relevance": 0}],
            },
            # ranking [Volcanoes]; Volcanoes (3) and Tides (1)
            {
                "id": "lava",
                "query": "basalt lava magma",
                "judgements": [
                    {"document_id": ids["Volcanoes"], "relevance": 3},
                    {"title": "Tides", "relevance": 1},
                ],
            },
            # nothing it names exists: reported, not searched, not averaged
            {
                "id": "ghost",
                "query": "sourdough",
                "judgements": [{"document_id": "doc_00000000000000000000000000"}, {"title": "No such title"}],
            },
        ],
        modes=["keyword"],
        recall_k=[1, 10],
    )
    reply = await acme.client.post("/v1/evaluations", json=body)
    assert reply.status_code == 201, reply.text
    run = reply.json()
    assert reply.headers["location"] == f"/v1/evaluations/{run['id']}"

    rocket = 1 / (2 + 1 / LOG2_3)  # DCG 1/log2(2); ideal 2/log2(2) + 1/log2(3)
    lava = 3 / (3 + 1 / LOG2_3)
    per_query = {q["id"]: q for q in run["queries"]}
    assert per_query["rocket"]["results"]["keyword"] == {
        "metrics": {"ndcg@10": pytest.approx(rocket), "mrr@10": 1.0, "recall@1": 0.5, "recall@10": 0.5},
        "ranking": [ids["Rocket engines"]],
        "first_relevant_rank": 1,
        "reranked": None,
    }
    assert per_query["tides"]["results"]["keyword"] == {
        "metrics": {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@1": 0.0, "recall@10": 0.0},
        "ranking": [ids["Tides"]],
        "first_relevant_rank": None,
        "reranked": None,
    }
    assert per_query["lava"]["results"]["keyword"]["metrics"]["ndcg@10"] == pytest.approx(lava)
    assert per_query["ghost"] == {
        "seq": 3, "id": "ghost", "query": "sourdough", "judgements": {}, "evaluated": False, "results": {},
    }  # fmt: skip
    assert per_query["tides"]["judgements"] == {ids["Volcanoes"]: 1, ids["Tides"]: 0}
    assert run["summary"] == {
        "keyword": {
            "ndcg@10": pytest.approx((rocket + 0 + lava) / 3),
            "mrr@10": pytest.approx(2 / 3),
            "recall@1": pytest.approx((0.5 + 0 + 0.5) / 3),
            "recall@10": pytest.approx((0.5 + 0 + 0.5) / 3),
        }
    }
    assert (run["query_count"], run["evaluated_count"], run["unresolved_count"]) == (4, 3, 2)
    assert run["unresolved"] == [
        {"query_seq": 3, "query_id": "ghost", "document_id": "doc_00000000000000000000000000",
         "title": None, "reason": "unknown", "matches": []},
        {"query_seq": 3, "query_id": "ghost", "document_id": None, "title": "No such title",
         "reason": "unknown", "matches": []},
    ]  # fmt: skip
    assert run["config"]["search"]["embedding_model"] == "@cf/baai/bge-base-en-v1.5"
    assert run["config"]["modes"] == ["keyword"] and run["config"]["recall_k"] == [1, 10]

    stored = await acme.client.get(f"/v1/evaluations/{run['id']}")
    assert stored.status_code == 200 and stored.json() == run


async def test_every_mode_ranks_as_v1_search_does(harness: StackHarness) -> None:
    acme, _ids = await _corpus(harness)
    queries = [
        {"query": "liquid oxygen nozzle", "judgements": [{"title": "Rocket engines", "relevance": 2}]},
        {"query": "why does bread rise", "judgements": [{"title": "Sourdough"}, {"title": "Volcanoes"}]},
    ]
    reply = await acme.client.post("/v1/evaluations", json=_run(queries))
    assert reply.status_code == 201, reply.text
    run = reply.json()
    assert set(run["summary"]) == {"keyword", "vector", "hybrid", "hybrid_rerank"}
    # The plain modes are /v1/search without rerank; hybrid_rerank is /v1/search with "rerank": {}.
    searches = {
        "keyword": {"mode": "keyword", "rerank": {"top_n": 0}},
        "vector": {"mode": "vector", "rerank": {"top_n": 0}},
        "hybrid": {"mode": "hybrid", "rerank": {"top_n": 0}},
        "hybrid_rerank": {"mode": "hybrid", "rerank": {}},
    }
    for query, result in zip(queries, run["queries"], strict=True):
        relevant = result["judgements"]
        for mode, options in searches.items():
            search = await acme.client.post(
                "/v1/search", json={"query": query["query"], "top_k": 100, **options}
            )
            assert search.status_code == 200, search.text
            ranking = list(dict.fromkeys(hit["document_id"] for hit in search.json()["results"]))
            got = result["results"][mode]
            assert got["ranking"] == ranking[:10], mode
            assert got["metrics"] == {
                "ndcg@10": ndcg_at_k(ranking, relevant, 10),
                "mrr@10": mrr_at_k(ranking, relevant, 10),
                "recall@10": recall_at_k(ranking, relevant, 10),
                "recall@100": recall_at_k(ranking, relevant, 100),
            }
            assert got["reranked"] == (True if mode == "hybrid_rerank" else None)
    assert run["rerank_fallbacks"] == 0
    assert run["config"]["search"]["rerank_top_n"] == 20  # the tenant has no RERANK_TOP_N: as /v1/search
    # vector and hybrid rank every document (each is somewhat similar), keyword only the matching ones
    assert len(run["queries"][0]["results"]["vector"]["ranking"]) == len(DOCS)


async def test_runs_are_listed_newest_first_with_strict_cursors(harness: StackHarness) -> None:
    acme, _ids = await _corpus(harness)
    created = []
    for n in range(3):
        reply = await acme.client.post(
            "/v1/evaluations",
            json=_run([{"query": "nozzle", "judgements": [{"title": "Rocket engines"}]}], name=f"run {n}",
                      modes=["keyword"]),
        )  # fmt: skip
        assert reply.status_code == 201, reply.text
        created.append(reply.json()["id"])
        harness.clock.advance(1)
    first = (await acme.client.get("/v1/evaluations", params={"limit": 2})).json()
    assert [e["id"] for e in first["evaluations"]] == created[::-1][:2]
    assert "queries" not in first["evaluations"][0] and first["evaluations"][0]["name"] == "run 2"
    second = (
        await acme.client.get("/v1/evaluations", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [e["id"] for e in second["evaluations"]] == [created[0]] and second["next_cursor"] is None

    documents = (await acme.client.get("/v1/documents", params={"limit": 1})).json()
    tampered = encode_cursor(f"e|2026-01-01T00:00:00.000Z|{created[0]}x")
    for cursor in ("%%%", "bm90IG9uZSBvZiBvdXJz", documents["next_cursor"], tampered, "é"):
        bad = await acme.client.get("/v1/evaluations", params={"cursor": cursor})
        assert bad.status_code in (400, 422), (cursor, bad.text)
        assert bad.headers["content-type"] == PROBLEM

    assert (await acme.client.delete(f"/v1/evaluations/{created[1]}")).status_code == 204
    assert (await acme.client.get(f"/v1/evaluations/{created[1]}")).status_code == 404
    assert (await acme.client.delete(f"/v1/evaluations/{created[1]}")).status_code == 404
    remaining = (await acme.client.get("/v1/evaluations")).json()["evaluations"]
    assert [e["id"] for e in remaining] == [created[2], created[0]]


async def test_comparison_shows_mode_and_query_deltas(harness: StackHarness) -> None:
    acme, _ids = await _corpus(harness)
    rocket_only = [{"title": "Rocket engines"}]
    before = await acme.client.post(
        "/v1/evaluations",
        json=_run(
            [
                {"id": "a", "query": "nozzle thrust", "judgements": rocket_only},
                {"id": "b", "query": "basalt lava", "judgements": [{"title": "Volcanoes"}]},
            ],
            modes=["keyword"],
        ),
    )
    # The same queries, but "a" now also wants Sourdough (never retrieved by keyword), and a new mode.
    after = await acme.client.post(
        "/v1/evaluations",
        json=_run(
            [
                {"id": "a", "query": "nozzle thrust", "judgements": [*rocket_only, {"title": "Sourdough"}]},
                {"id": "b", "query": "basalt lava", "judgements": [{"title": "Volcanoes"}]},
                {"id": "c", "query": "moon", "judgements": [{"title": "Tides"}]},
            ],
            modes=["keyword", "hybrid"],
        ),
    )
    assert before.status_code == after.status_code == 201
    current, baseline = after.json()["id"], before.json()["id"]
    reply = await acme.client.get(f"/v1/evaluations/{current}/compare/{baseline}")
    assert reply.status_code == 200, reply.text
    compared = reply.json()
    a_after = 1 / (1 + 1 / LOG2_3)  # Rocket at rank 1 of two relevant documents
    assert compared["modes"].keys() == {"keyword"}  # hybrid was not in the baseline
    keyword = compared["modes"]["keyword"]["ndcg@10"]
    assert keyword["baseline"] == 1.0
    assert keyword["current"] == pytest.approx((a_after + 1 + 1) / 3)
    assert keyword["delta"] == pytest.approx(keyword["current"] - 1.0)
    assert compared["queries"] == [
        {"id": "a", "query": "nozzle thrust", "deltas": {"keyword": {
            "ndcg@10": pytest.approx(a_after - 1), "mrr@10": 0.0, "recall@10": -0.5, "recall@100": -0.5}}},
        {"id": "b", "query": "basalt lava", "deltas": {"keyword": {
            "ndcg@10": 0.0, "mrr@10": 0.0, "recall@10": 0.0, "recall@100": 0.0}}},
    ]  # fmt: skip
    assert compared["changes"] == {"keyword": {"improved": 0, "regressed": 1, "unchanged": 1}}
    assert compared["matched_by"] == "id"
    assert (compared["unmatched_current"], compared["unmatched_baseline"]) == (1, 0)
    assert compared["config_changes"] == {
        "modes": {"baseline": ["keyword"], "current": ["keyword", "hybrid"]}
    }
    assert compared["evaluation"]["id"] == current and compared["baseline"]["id"] == baseline

    missing = "eval_00000000000000000000000000"
    assert (await acme.client.get(f"/v1/evaluations/{current}/compare/{missing}")).status_code == 404
    assert (await acme.client.get(f"/v1/evaluations/{current}/compare/not-an-id")).status_code == 404


async def test_other_tenants_documents_and_runs_are_unknown(harness: StackHarness) -> None:
    acme, ids = await _corpus(harness)
    mine = await acme.client.post(
        "/v1/evaluations",
        json=_run([{"query": "tides", "judgements": [{"title": "Tides"}]}], modes=["keyword"]),
    )
    assert mine.status_code == 201
    globex, globex_ids = await _corpus(harness, "globex")
    # globex has its own "Tides"; acme's document id, and a made-up one, must look exactly alike.
    reply = await globex.client.post(
        "/v1/evaluations",
        json=_run(
            [
                {"query": "moon gravity", "judgements": [{"document_id": ids["Tides"]}]},
                {"query": "moon gravity", "judgements": [{"document_id": "doc_00000000000000000000000000"}]},
                {"query": "moon gravity", "judgements": [{"title": "Tides"}]},
            ],
            modes=["keyword"],
        ),
    )
    assert reply.status_code == 201, reply.text
    run = reply.json()
    assert [u["reason"] for u in run["unresolved"]] == ["unknown", "unknown"]
    assert run["queries"][2]["judgements"] == {globex_ids["Tides"]: 1}  # the title is globex's own
    assert ids["Tides"] not in reply.text.replace(f'"document_id":"{ids["Tides"]}"', "")

    only_foreign = await globex.client.post(
        "/v1/evaluations", json=_run([{"query": "moon", "judgements": [{"document_id": ids["Tides"]}]}])
    )
    assert only_foreign.status_code == 422 and only_foreign.headers["content-type"] == PROBLEM
    problem = only_foreign.json()
    assert problem["type"] == "https://edgerag.dev/problems/validation"
    assert problem["unresolved"] == [
        {"query_seq": 0, "query_id": None, "document_id": ids["Tides"], "title": None, "reason": "unknown",
         "matches": []}
    ]  # fmt: skip

    acme_run = mine.json()["id"]
    for method, path in (
        ("GET", f"/v1/evaluations/{acme_run}"),
        ("DELETE", f"/v1/evaluations/{acme_run}"),
        ("GET", f"/v1/evaluations/{run['id']}/compare/{acme_run}"),
        ("GET", f"/v1/evaluations/{acme_run}/compare/{run['id']}"),
    ):
        assert (await globex.client.request(method, path)).status_code == 404, path
    assert [e["id"] for e in (await globex.client.get("/v1/evaluations")).json()["evaluations"]] == [
        run["id"]
    ]
    assert (await acme.client.get(f"/v1/evaluations/{acme_run}")).status_code == 200  # still there


async def test_ambiguous_titles_and_documents_not_ready_are_reported(harness: StackHarness) -> None:
    acme, ids = await _corpus(harness)
    twin = await acme.client.post("/v1/documents", json={"title": "Tides", "text": "Tides again, a copy."})
    late = await acme.client.post("/v1/documents", json={"title": "Late", "text": "Comets have icy tails."})
    twin_id, late_id = twin.json()["document"]["id"], late.json()["document"]["id"]  # not ingested yet
    reply = await acme.client.post(
        "/v1/evaluations",
        json=_run(
            [{"query": "comets icy tails", "judgements": [{"title": "Tides"}, {"document_id": late_id}]}],
            modes=["keyword"],
        ),
    )
    assert reply.status_code == 201, reply.text
    run = reply.json()
    assert run["unresolved"] == [
        {"query_seq": 0, "query_id": None, "document_id": None, "title": "Tides", "reason": "ambiguous",
         "matches": [ids["Tides"], twin_id]}
    ]  # fmt: skip
    assert run["not_ready"] == [late_id]
    assert run["summary"]["keyword"]["ndcg@10"] == 0.0  # the judged document cannot be found yet


async def test_scopes(harness: StackHarness) -> None:
    acme, _ids = await _corpus(harness)
    body = _run([{"query": "nozzle", "judgements": [{"title": "Rocket engines"}]}], modes=["keyword"])
    reader = await acme.client.post("/v1/keys", json={"name": "reader", "scopes": ["read", "write"]})
    evaluator = await acme.client.post("/v1/keys", json={"name": "ci", "scopes": ["evaluate"]})
    assert evaluator.status_code == 201 and sorted(evaluator.json()["scopes"]) == ["evaluate", "read"]
    async with harness.client(reader.json()["key"]) as client:
        refused = await client.post("/v1/evaluations", json=body)
        assert refused.status_code == 403 and "'evaluate' scope" in refused.json()["detail"]
        assert (await client.get("/v1/evaluations")).status_code == 403
    async with harness.client(evaluator.json()["key"]) as client:
        assert (await client.post("/v1/evaluations", json=body)).status_code == 201
        assert len((await client.get("/v1/evaluations")).json()["evaluations"]) == 1
        assert (await client.post("/v1/search", json={"query": "nozzle"})).status_code == 200  # implies read
        assert (await client.post("/v1/documents", json={"title": "x", "text": "y"})).status_code == 403
    async with harness.client() as anonymous:
        assert (await anonymous.post("/v1/evaluations", json=body)).status_code == 401


async def test_a_long_query_is_cut_for_vectors_not_refused(harness: StackHarness) -> None:
    acme, _ids = await _corpus(harness)
    long_query = " ".join(f"Q{n % 10}" for n in range(519)) + " nozzle"  # past bge's 512 tokens
    reply = await acme.client.post(
        "/v1/evaluations", json=_run([{"query": long_query, "judgements": [{"title": "Rocket engines"}]}])
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["queries"][0]["results"]["keyword"]["first_relevant_rank"] == 1


def _query(n: int = 0, judgements: int = 1) -> dict[str, Any]:
    return {"query": f"nozzle {n}", "judgements": [{"title": "Rocket engines"}] * judgements}


MALFORMED: list[tuple[str, Any]] = [
    ("no queries", {"queries": []}),
    ("too many queries", {"queries": [_query(n) for n in range(201)], "modes": ["keyword"]}),
    ("too many searches", {"queries": [_query(n) for n in range(134)]}),  # x 3 modes = 402
    ("too many judgements in a query", {"queries": [_query(0, 101)]}),
    ("too many judgements in a run", {"queries": [_query(n, 100) for n in range(21)], "modes": ["keyword"]}),
    ("both id and title", {"queries": [{"query": "x", "judgements": [{"title": "a", "document_id": "b"}]}]}),
    ("neither id nor title", {"queries": [{"query": "x", "judgements": [{"relevance": 1}]}]}),
    ("no judgements", {"queries": [{"query": "x", "judgements": []}]}),
    ("relevance too high", {"queries": [{"query": "x", "judgements": [{"title": "a", "relevance": 11}]}]}),
    ("negative relevance", {"queries": [{"query": "x", "judgements": [{"title": "a", "relevance": -1}]}]}),
    (
        "relevance not an int",
        {"queries": [{"query": "x", "judgements": [{"title": "a", "relevance": "hi"}]}]},
    ),
    ("blank query", {"queries": [{"query": "   ", "judgements": [{"title": "a"}]}]}),
    ("punctuation only", {"queries": [{"query": "?!", "judgements": [{"title": "a"}]}]}),
    ("query too long", {"queries": [{"query": "a" * 2001, "judgements": [{"title": "a"}]}]}),
    ("unknown mode", {"queries": [_query()], "modes": ["semantic"]}),
    ("duplicate mode", {"queries": [_query()], "modes": ["keyword", "keyword"]}),
    ("no modes", {"queries": [_query()], "modes": []}),
    ("recall cutoff 0", {"queries": [_query()], "recall_k": [0]}),
    ("recall cutoff past the depth", {"queries": [_query()], "recall_k": [101]}),
    ("ndcg cutoff 0", {"queries": [_query()], "ndcg_k": 0}),
    ("duplicate query ids", {"queries": [{**_query(0), "id": "q"}, {**_query(1), "id": "q"}]}),
    ("unknown field", {"queries": [_query()], "top_k": 5}),
    ("queries not a list", {"queries": {"query": "x"}}),
    ("not an object", ["queries"]),
]


async def test_malformed_input_is_a_422_problem(harness: StackHarness) -> None:
    acme, _ids = await _corpus(harness)
    for case, body in MALFORMED:
        reply = await acme.client.post("/v1/evaluations", json=body)
        assert reply.status_code == 422, (case, reply.status_code, reply.text[:300])
        assert reply.headers["content-type"] == PROBLEM, case
        assert reply.json()["errors"], case
    searches = await acme.client.post("/v1/evaluations", json=MALFORMED[2][1])
    assert "at most 400 searches" in searches.json()["detail"]
    not_json = await acme.client.post(
        "/v1/evaluations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.headers["content-type"] == PROBLEM
    assert (await acme.client.get("/v1/evaluations")).json()["evaluations"] == []  # nothing stored


async def test_a_failing_model_or_index_is_a_502_and_stores_nothing(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, _ids = await _corpus(harness)

    async def down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("InferenceUpstreamError: 3040: capacity exceeded")

    env = harness.stack.workers["gateway"].env
    for binding, method in (("AI", "run"), ("VECTORS", "query")):
        with monkeypatch.context() as patch:
            patch.setattr(getattr(env, binding), method, down)
            reply = await acme.client.post("/v1/evaluations", json=_run([_query(len(binding))]))
            assert reply.status_code == 502, (binding, reply.text)
            assert reply.headers["content-type"] == PROBLEM and "capacity" not in reply.text
            assert (await acme.client.get("/v1/evaluations")).json()["evaluations"] == []
            keyword = await acme.client.post("/v1/evaluations", json=_run([_query()], modes=["keyword"]))
            assert keyword.status_code == 201  # the keyword retriever needs neither
            assert (await acme.client.delete(f"/v1/evaluations/{keyword.json()['id']}")).status_code == 204


async def test_a_rerank_that_falls_back_is_counted_not_hidden(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, _ids = await _corpus(harness)
    ai = harness.stack.workers["gateway"].env.AI
    real_run = ai.run
    reranker = getattr(harness.stack.workers["gateway"].env, "RERANK_MODEL", "@cf/baai/bge-reranker-base")

    async def flaky(model: str, *args: Any, **kwargs: Any) -> Any:
        if model == reranker:
            raise RuntimeError("InferenceUpstreamError: 3040: capacity exceeded")
        return await real_run(model, *args, **kwargs)

    monkeypatch.setattr(ai, "run", flaky)
    body = _run([_query(0), _query(1)], modes=["hybrid", "hybrid_rerank"])
    reply = await acme.client.post("/v1/evaluations", json=body)
    assert reply.status_code == 201, reply.text
    run = reply.json()
    assert run["rerank_fallbacks"] == 2
    assert [q["results"]["hybrid_rerank"]["reranked"] for q in run["queries"]] == [False, False]
    # Fell back to the fused order: the same scores as hybrid.
    assert run["summary"]["hybrid_rerank"] == run["summary"]["hybrid"]
