"""edgerag.problems: RFC 9457 members, statuses, headers, validation errors, and safety of details."""

from __future__ import annotations

import json

import pytest
from edgerag import problems
from edgerag.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    MethodNotAllowed,
    NotFound,
    NotImplementedProblem,
    PayloadTooLarge,
    Problem,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    UpstreamFailure,
    ValidationFailed,
)
from pydantic import BaseModel, ValidationError


@pytest.mark.parametrize(
    ("cls", "status", "title"),
    [
        (BadRequest, 400, "Bad Request"),
        (Unauthorized, 401, "Unauthorized"),
        (Forbidden, 403, "Forbidden"),
        (NotFound, 404, "Not Found"),
        (Conflict, 409, "Conflict"),
        (PayloadTooLarge, 413, "Payload Too Large"),
        (UnsupportedMediaType, 415, "Unsupported Media Type"),
        (ValidationFailed, 422, "Unprocessable Content"),
        (RateLimited, 429, "Too Many Requests"),
        (InternalError, 500, "Internal Server Error"),
        (UpstreamFailure, 502, "Bad Gateway"),
        (ServiceUnavailable, 503, "Service Unavailable"),
        (MethodNotAllowed, 405, "Method Not Allowed"),
        (NotImplementedProblem, 501, "Not Implemented"),
    ],
)
def test_each_problem_has_its_status_title_and_type(cls: type[Problem], status: int, title: str) -> None:
    problem = cls("what happened")
    body = problem.to_dict()
    assert isinstance(problem, Problem) and isinstance(problem, Exception)
    assert body["status"] == problem.status == status
    assert body["title"] == title
    assert body["type"] == problem.type
    assert body["type"].startswith("https://edgerag.dev/problems/") and " " not in body["type"]
    json.dumps(body)  # always serialisable


def test_slugs_are_unique() -> None:
    kinds = [o for o in vars(problems).values() if isinstance(o, type) and issubclass(o, Problem)]
    kinds.remove(Problem)
    assert len(kinds) == 14
    assert len({k.slug for k in kinds}) == len(kinds)


def test_method_not_allowed_names_the_allowed_methods() -> None:
    assert MethodNotAllowed("no", allow=["post", "GET", "get"]).headers == {"Allow": "GET, POST"}
    assert MethodNotAllowed("no").headers == {}


def test_to_dict_members() -> None:
    problem = NotFound("no document doc_1", instance="/v1/documents/doc_1", document_id="doc_1")
    assert problem.to_dict() == {
        "type": "https://edgerag.dev/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "no document doc_1",
        "instance": "/v1/documents/doc_1",
        "document_id": "doc_1",
    }


def test_detail_is_optional_and_str_falls_back_to_the_title() -> None:
    problem = Conflict()
    assert "detail" not in problem.to_dict()
    assert str(problem) == "Conflict"
    assert str(Conflict("a tenant named 'x' exists")) == "a tenant named 'x' exists"


def test_extensions_cannot_redefine_standard_members() -> None:
    with pytest.raises(ValueError, match="status"):
        BadRequest("x", status=200)


def test_repr_is_short_and_useful() -> None:
    assert repr(Forbidden("missing scope")) == "Forbidden(status=403, detail='missing scope')"


def test_unauthorized_carries_a_challenge() -> None:
    assert Unauthorized("send a key").headers == {"WWW-Authenticate": 'Bearer realm="edgerag"'}
    admin = Unauthorized(challenge='Bearer realm="admin"')
    assert admin.headers == {"WWW-Authenticate": 'Bearer realm="admin"'}
    assert NotFound().headers == {}


def test_rate_limited_carries_retry_after() -> None:
    problem = RateLimited("slow down", retry_after=30)
    assert problem.retry_after == 30
    assert problem.headers == {"Retry-After": "30"}
    assert problem.to_dict()["retry_after"] == 30
    with pytest.raises(ValueError):
        RateLimited(retry_after=-1)


def test_internal_error_never_shows_a_cause_by_default() -> None:
    assert InternalError().to_dict()["detail"] == "an unexpected error occurred"


def test_validation_failed_keeps_only_loc_msg_type() -> None:
    problem = ValidationFailed(
        None,
        [
            {"loc": ("body", "key"), "msg": "too short", "type": "string_too_short", "input": "er_secret"},
            {"loc": "query", "msg": "missing", "type": "missing"},
        ],
    )
    assert problem.errors == [
        {"loc": ["body", "key"], "msg": "too short", "type": "string_too_short"},
        {"loc": ["query"], "msg": "missing", "type": "missing"},
    ]
    assert problem.to_dict()["errors"] == problem.errors
    assert problem.detail == "body.key: too short; query: missing"
    assert "er_secret" not in json.dumps(problem.to_dict())


def test_validation_failed_from_pydantic() -> None:
    class Body(BaseModel):
        name: str
        size: int

    with pytest.raises(ValidationError) as raised:
        Body.model_validate({"size": "secret-value"})
    problem = ValidationFailed.from_pydantic(raised.value)
    assert [e["loc"] for e in problem.errors] == [["name"], ["size"]]
    assert {e["type"] for e in problem.errors} == {"missing", "int_parsing"}
    assert "secret-value" not in json.dumps(problem.to_dict())


def test_validation_summary_is_capped() -> None:
    problem = ValidationFailed(errors=[{"loc": [f"f{n}"], "msg": "bad", "type": "t"} for n in range(8)])
    assert problem.detail is not None and problem.detail.endswith("(and 3 more)")
    assert len(problem.errors) == 8


def test_raise_from_keeps_the_cause() -> None:
    with pytest.raises(UpstreamFailure) as raised:
        try:
            raise TimeoutError("AI binding timed out")
        except TimeoutError as exc:
            raise UpstreamFailure("the embedding model did not answer") from exc
    assert isinstance(raised.value.__cause__, TimeoutError)
