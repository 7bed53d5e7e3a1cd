"""The OpenAPI document speaks JSON Schema: bounds are minimum/maximum (and friends), never pydantic's
own ge/le/gt/lt keys, which client generators and schemathesis ignore (so they would send values the
API then refuses)."""

from __future__ import annotations

from typing import Any

from gateway.app import build_app

PYDANTIC_ONLY = {"ge", "le", "gt", "lt", "min_length", "max_length", "multiple_of"}


def _schemas(node: Any, path: str = "#") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        in_properties = path.endswith("/properties")
        for key, value in node.items():
            if key in PYDANTIC_ONLY and not in_properties:
                found.append((path, key))
            found.extend(_schemas(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(_schemas(item, f"{path}/{index}"))
    return found


def test_no_schema_uses_pydantic_only_keywords() -> None:
    assert _schemas(build_app().openapi()) == []


def test_the_limits_body_declares_its_bounds() -> None:
    schema = build_app().openapi()["components"]["schemas"]["LimitValues"]["properties"]
    budget = next(s for s in schema["monthly_token_budget"]["anyOf"] if s.get("type") == "integer")
    assert budget["minimum"] == 0 and budget["maximum"] == 10**15
