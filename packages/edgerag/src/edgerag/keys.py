"""API keys: generation, parsing, hashing, verification and scopes.

A key reads ``er_<prefix>_<secret>``:

* ``er_`` marks it as ours (secret scanners and humans can recognise a leaked key);
* ``prefix``: 12 random lower-case letters/digits (~62 bits), stored in clear, unique, used to look the
  key up; showing it (in key listings, logs) reveals nothing about the secret;
* ``secret``: 32 random bytes, URL-safe base64 (43 characters). Never stored.

Only a hash of the whole plaintext is stored. A fast hash is the right tool here, unlike for
passwords: slow KDFs (bcrypt, scrypt, Argon2) exist to make guessing *low-entropy* human secrets
expensive, but this secret is 256 bits from the OS CSPRNG, so there is nothing to guess: a leaked hash
table cannot be reversed at any hash speed. A slow KDF would only burn the Worker's CPU budget on
every authenticated request. The default is SHA-256 (stored as 64 hex characters). With a server-side
``pepper`` (a secret binding), the hash is HMAC-SHA256 instead, stored as ``hmac-sha256:<hex>``, so a
leaked D1 copy is useless without the pepper too; :func:`verify` accepts both forms, so a pepper can
be introduced without invalidating existing keys. Comparison is constant-time.

Randomness is drawn at call time only: Python Workers snapshot module state at deploy.

Scopes are hierarchical: ``admin`` implies ``write`` implies ``read``; ``chat`` (hold conversations,
ask for answers, use the OpenAI-compatible routes, read and write end users' context) stands beside
them and is implied by ``admin`` only, so a ``chat``-only key given to a front end can talk but cannot
upload or delete documents. ``evaluate`` (run, read and delete retrieval evaluations,
``/v1/evaluations``: many searches per request) implies ``read`` and is implied by ``admin`` only, so a
CI job can measure retrieval quality without being able to change documents. :func:`parse_scopes`
returns the expanded set, so "does this key allow X" is plain membership. To add a scope: a member
here (in privilege order), its row in ``_IMPLIED``, and add it to the sets of the scopes that imply it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from edgerag.ids import new_id

__all__ = [
    "InvalidApiKeyError",
    "InvalidScopeError",
    "IssuedKey",
    "Scope",
    "format_scopes",
    "generate_api_key",
    "hash_secret",
    "parse_api_key",
    "parse_scopes",
    "verify",
]

KEY_MARKER = "er"
PREFIX_LENGTH = 12
SECRET_BYTES = 32
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# The prefix alphabet has no "_", so the first two underscores delimit the parts; the secret
# (URL-safe base64) may contain "_" and "-" itself.
_KEY = re.compile(rf"^{KEY_MARKER}_([a-z0-9]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43,128}})$")
_HMAC_TAG = "hmac-sha256:"


class InvalidApiKeyError(ValueError):
    """The text is not a well-formed key. The message never contains the text itself."""


class InvalidScopeError(ValueError):
    """An unknown scope name, or no scope at all."""


class Scope(StrEnum):
    # Declaration order is the stored order (least to most privileged), see format_scopes.
    READ = "read"
    CHAT = "chat"
    EVALUATE = "evaluate"
    WRITE = "write"
    ADMIN = "admin"


_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.CHAT: frozenset({Scope.CHAT}),
    Scope.EVALUATE: frozenset({Scope.EVALUATE, Scope.READ}),
    Scope.WRITE: frozenset({Scope.WRITE, Scope.READ}),
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.WRITE, Scope.EVALUATE, Scope.CHAT, Scope.READ}),
}


@dataclass(frozen=True)
class IssuedKey:
    """A new key. ``plaintext`` (and ``secret``) are shown to the caller once and never stored."""

    key_id: str
    prefix: str
    secret: str = field(repr=False)
    plaintext: str = field(repr=False)


def generate_api_key() -> IssuedKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return IssuedKey(
        key_id=new_id("key"), prefix=prefix, secret=secret, plaintext=f"{KEY_MARKER}_{prefix}_{secret}"
    )


def parse_api_key(text: str) -> tuple[str, str]:
    """``(prefix, plaintext)`` of a well-formed key (surrounding whitespace ignored).

    Raises :class:`InvalidApiKeyError` (a ``ValueError``) otherwise, without echoing the text: a malformed
    key is often a real key with a typo, and error messages end up in logs.
    """
    match = _KEY.match(text.strip())
    if match is None:
        raise InvalidApiKeyError(f"not an edgerag API key (expected {KEY_MARKER}_<prefix>_<secret>)")
    return match.group(1), match.group(0)


def hash_secret(plaintext: str, *, pepper: bytes | None = None) -> str:
    """The stored form of a key: SHA-256 hex, or ``hmac-sha256:<hex>`` with a server pepper."""
    data = plaintext.encode("utf-8")
    if pepper:
        return _HMAC_TAG + hmac.new(pepper, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def verify(plaintext: str, stored_hash: str, *, pepper: bytes | None = None) -> bool:
    """Whether ``plaintext`` matches ``stored_hash`` (either form), in constant time."""
    if stored_hash.startswith(_HMAC_TAG):
        if not pepper:
            return False  # a peppered hash cannot be checked without the pepper
        expected = hash_secret(plaintext, pepper=pepper)
    else:
        expected = hash_secret(plaintext)
    return hmac.compare_digest(expected.encode("ascii"), stored_hash.encode("ascii", "replace"))


def parse_scopes(text: str) -> frozenset[Scope]:
    """Scope names separated by spaces or commas, expanded by implication (``"admin"`` -> all five).

    Raises :class:`InvalidScopeError` (a ``ValueError``) for an unknown name or an empty list.
    """
    granted: set[Scope] = set()
    for name in text.replace(",", " ").split():
        try:
            scope = Scope(name.lower())
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise InvalidScopeError(f"unknown scope {name!r}; scopes are {known}") from None
        granted |= _IMPLIED[scope]
    if not granted:
        raise InvalidScopeError("at least one scope is required")
    return frozenset(granted)


def format_scopes(scopes: Iterable[Scope]) -> str:
    """The stored form: space-separated, least to most privileged (``"read chat evaluate write
    admin"``)."""
    order = list(Scope)
    return " ".join(s.value for s in sorted(set(scopes), key=order.index))
