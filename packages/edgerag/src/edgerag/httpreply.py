"""A plain HTTP reply that worker packages return and entry modules turn into ``workers.Response``.

Keeping the worker packages free of the SDK's ``Response`` lets the same code run under CPython; the
entry (or the local host) does the one conversion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HttpReply", "json_reply", "problem_reply"]


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(payload: Any, status: int = 200) -> HttpReply:
    return HttpReply(status, json.dumps(payload), {"content-type": "application/json"})


def problem_reply(status: int, title: str, detail: str, type_: str = "about:blank") -> HttpReply:
    """An RFC 9457 problem-details reply."""
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    return HttpReply(status, json.dumps(body), {"content-type": "application/problem+json"})
