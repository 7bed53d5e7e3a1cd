"""The end user a request acts for: the ``X-End-User`` header.

An API key acts for its tenant; a tenant's application (a web front end, a support bot) serves many
people, and chat sessions, messages and user context belong to one of them. The application names
that person in ``X-End-User`` on every request (a header rather than a body field, so GET and DELETE
carry it too and one rule covers every route). Absent, the request acts for the tenant's default end
user, stored as the empty string ``''`` — a key used by a single-user tool needs no header at all.

The header is an identifier the tenant chooses (its own user id, an e-mail address): 1-128 characters
``[A-Za-z0-9][A-Za-z0-9_.:@-]*``. Anything else is a 422 naming the header, never silently the default
user. The end user is trusted as the tenant's word: the API key authenticates the tenant, and the
tenant vouches for its users (as with OpenAI's ``user`` field). Routes declare
``end_user: str = Depends(get_end_user)``.
"""

from __future__ import annotations

import re
from typing import Final

from edgerag.problems import ValidationFailed
from fastapi import Header

__all__ = ["DEFAULT_END_USER", "END_USER_HEADER", "END_USER_PATTERN", "get_end_user", "valid_end_user"]

END_USER_HEADER: Final = "X-End-User"
END_USER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
DEFAULT_END_USER: Final = ""
_PATTERN = re.compile(END_USER_PATTERN[:-1])  # fullmatch: "$" would also accept a trailing newline


def valid_end_user(text: str) -> bool:
    return _PATTERN.fullmatch(text) is not None


async def get_end_user(
    x_end_user: str | None = Header(
        None,
        alias=END_USER_HEADER,
        description="the end user this request acts for (1-128 of A-Z a-z 0-9 _ . : @ -, first a letter "
        "or digit); absent: the tenant's default end user",
        json_schema_extra={"pattern": END_USER_PATTERN},
    ),
) -> str:
    if x_end_user is None:
        return DEFAULT_END_USER
    if not valid_end_user(x_end_user):
        raise ValidationFailed(
            f"the {END_USER_HEADER} header must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, "
            "starting with a letter or digit",
            errors=[
                {
                    "loc": ["header", END_USER_HEADER.lower()],
                    "msg": "not a valid end user id",
                    "type": "string_pattern_mismatch",
                }
            ],
        )
    return x_end_user
