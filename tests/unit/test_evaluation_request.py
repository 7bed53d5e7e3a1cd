"""The bounds of POST /v1/evaluations' body at their edges (the integration suite checks the 422s over
HTTP; running a maximal run there would take seconds of searching)."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.evaluation_models import MAX_JUDGEMENTS, MAX_QUERIES, MAX_SEARCHES, NewEvaluation
from pydantic import ValidationError


def _body(queries: int, modes: list[str], judgements: int = 1) -> dict[str, Any]:
    return {
        "queries": [
            {"query": f"query {n}", "judgements": [{"title": "t"}] * judgements} for n in range(queries)
        ],
        "modes": modes,
    }


def test_the_largest_runs_are_accepted() -> None:
    assert MAX_SEARCHES == 2 * MAX_QUERIES
    assert len(NewEvaluation.model_validate(_body(MAX_QUERIES, ["keyword", "hybrid"])).queries) == MAX_QUERIES
    assert len(
        NewEvaluation.model_validate(_body(MAX_SEARCHES // 3, ["keyword", "vector", "hybrid"])).queries
    )
    assert NewEvaluation.model_validate(_body(MAX_JUDGEMENTS // 100, ["hybrid"], judgements=100))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(MAX_QUERIES + 1, ["hybrid"]), "at most 200 items"),
        (_body(MAX_SEARCHES // 3 + 1, ["keyword", "vector", "hybrid"]), "at most 400 searches"),
        (_body(MAX_JUDGEMENTS // 100 + 1, ["hybrid"], judgements=100), "at most 2000 judgements"),
    ],
)
def test_one_past_a_bound_is_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        NewEvaluation.model_validate(body)


def test_a_rerank_of_nothing_is_refused_for_hybrid_rerank() -> None:
    body = {**_body(1, ["hybrid_rerank"]), "search": {"rerank": {"top_n": 0}}}
    with pytest.raises(ValidationError, match="turns the rerank off"):
        NewEvaluation.model_validate(body)
    assert NewEvaluation.model_validate({**body, "modes": ["hybrid"]})  # no rerank mode: nothing to turn off


def test_defaults_and_normalised_cutoffs() -> None:
    body = NewEvaluation.model_validate({"queries": [{"query": " q ", "judgements": [{"document_id": "d"}]}]})
    assert body.modes == ["keyword", "vector", "hybrid", "hybrid_rerank"]
    assert body.search.syntax == "plain" and body.search.rerank is None
    assert (body.ndcg_k, body.mrr_k, body.recall_k) == (10, 10, [10, 100])
    assert body.queries[0].query == "q" and body.queries[0].judgements[0].relevance == 1
    recall = NewEvaluation.model_validate({**_body(1, ["hybrid"]), "recall_k": [100, 5, 5]}).recall_k
    assert recall == [5, 100]
