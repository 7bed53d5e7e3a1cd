"""API keys: generation, parsing, hashing and scopes.

A key reads ``er_<prefix>_<secret>``: the 12-character prefix is stored in clear as the lookup key, the
whole key is stored only as a SHA-256 hash. A plain hash (no slow KDF) is right here because the secret
is 256 random bits: there is no dictionary to guess from, so stretching adds cost without adding
safety. Comparison is constant-time. Randomness is drawn at call time only (never at import), as
Python Workers snapshot module state at deploy.

Scopes are hierarchical: ``admin`` implies ``write`` implies ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from enum import Enum

__all__ = ["IssuedKey", "Scope", "generate_api_key", "hash_secret", "parse_api_key", "parse_scopes", "verify"]

_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_KEY = re.compile(r"^er_([a-z0-9]{12})_([A-Za-z0-9_-]{43,})$")


class Scope(str, Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


_IMPLIES = {Scope.ADMIN: {Scope.ADMIN, Scope.WRITE, Scope.READ}, Scope.WRITE: {Scope.WRITE, Scope.READ},
            Scope.READ: {Scope.READ}}


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    prefix: str
    plaintext: str  # shown to the caller once, never stored


def generate_api_key() -> IssuedKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id="key_" + prefix, prefix=prefix, plaintext=f"er_{prefix}_{secret}")


def parse_api_key(text: str) -> tuple[str, str]:
    """``(prefix, plaintext)`` of a well-formed key; ``ValueError`` otherwise (never echoing the key)."""
    match = _KEY.match(text.strip())
    if match is None:
        raise ValueError("not an edgerag API key")
    return match.group(1), match.group(0)


def hash_secret(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def verify(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(plaintext), stored_hash)


def parse_scopes(text: str) -> frozenset[Scope]:
    """Space-separated scope names, expanded by implication; unknown names are a ``ValueError``."""
    granted: set[Scope] = set()
    for name in text.split():
        try:
            granted |= _IMPLIES[Scope(name)]
        except ValueError:
            raise ValueError(f"unknown scope {name!r}; scopes are read, write, admin") from None
    if not granted:
        raise ValueError("at least one scope is required")
    return frozenset(granted)
