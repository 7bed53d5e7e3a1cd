"""edgerag.keys: key format, parsing, hashing (plain and peppered), verification, scopes."""

from __future__ import annotations

import hashlib
import re

import pytest
from edgerag.keys import (
    InvalidApiKeyError,
    InvalidScopeError,
    Scope,
    format_scopes,
    generate_api_key,
    hash_secret,
    parse_api_key,
    parse_scopes,
    verify,
)


def test_generated_key_format() -> None:
    issued = generate_api_key()
    assert re.fullmatch(r"[a-z0-9]{12}", issued.prefix)
    assert len(issued.secret) >= 43  # 32 random bytes, URL-safe base64
    assert issued.plaintext == f"er_{issued.prefix}_{issued.secret}"
    assert re.fullmatch(r"key_[0-9a-z]{26}", issued.key_id)


def test_keys_are_random_at_call_time() -> None:
    keys = [generate_api_key() for _ in range(50)]
    assert len({k.prefix for k in keys}) == 50
    assert len({k.secret for k in keys}) == 50
    assert len({k.key_id for k in keys}) == 50


def test_repr_never_shows_the_secret() -> None:
    issued = generate_api_key()
    assert issued.secret not in repr(issued)
    assert issued.prefix in repr(issued)


def test_parse_round_trip() -> None:
    issued = generate_api_key()
    assert parse_api_key(issued.plaintext) == (issued.prefix, issued.plaintext)
    assert parse_api_key(f"  {issued.plaintext}\n") == (issued.prefix, issued.plaintext)


def test_parse_accepts_underscores_and_dashes_in_the_secret() -> None:
    key = "er_abcdefghijkl_" + "_-" * 22
    assert parse_api_key(key) == ("abcdefghijkl", key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "er_",
        "sk_abcdefghijkl_" + "a" * 43,  # wrong marker
        "er_ABCDEFGHIJKL_" + "a" * 43,  # prefix alphabet is lower case
        "er_abcdefghijk_" + "a" * 43,  # prefix too short
        "er_abcdefghijkl_" + "a" * 42,  # secret too short
        "er_abcdefghijkl_" + "a" * 42 + "=",  # not URL-safe base64
        "er_abcdefghijkl." + "a" * 43,
        "Bearer er_abcdefghijkl_" + "a" * 43,
    ],
)
def test_parse_rejects_malformed_keys_without_echoing_them(text: str) -> None:
    with pytest.raises(InvalidApiKeyError) as raised:
        parse_api_key(text)
    assert isinstance(raised.value, ValueError)
    assert "a" * 20 not in str(raised.value) and "abcdefghij" not in str(raised.value)


def test_hash_is_sha256_hex_of_the_whole_key() -> None:
    issued = generate_api_key()
    assert hash_secret(issued.plaintext) == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert issued.secret not in hash_secret(issued.plaintext)


def test_verify() -> None:
    issued, other = generate_api_key(), generate_api_key()
    stored = hash_secret(issued.plaintext)
    assert verify(issued.plaintext, stored)
    assert not verify(other.plaintext, stored)
    assert not verify(issued.plaintext, "")
    assert not verify(issued.plaintext, "é" * 64)  # garbage in the store is a mismatch, not a crash


def test_peppered_hashes() -> None:
    issued = generate_api_key()
    stored = hash_secret(issued.plaintext, pepper=b"server-side secret")
    assert stored.startswith("hmac-sha256:")
    assert stored != "hmac-sha256:" + hash_secret(issued.plaintext)
    assert verify(issued.plaintext, stored, pepper=b"server-side secret")
    assert not verify(issued.plaintext, stored, pepper=b"another pepper")
    assert not verify(issued.plaintext, stored)  # cannot check without the pepper
    # Keys hashed before a pepper was configured keep working.
    assert verify(issued.plaintext, hash_secret(issued.plaintext), pepper=b"server-side secret")


@pytest.mark.parametrize(
    ("text", "granted"),
    [
        ("read", {Scope.READ}),
        ("write", {Scope.READ, Scope.WRITE}),
        ("admin", {Scope.READ, Scope.CHAT, Scope.EVALUATE, Scope.WRITE, Scope.ADMIN}),
        ("chat", {Scope.CHAT}),
        ("chat read", {Scope.CHAT, Scope.READ}),
        ("evaluate", {Scope.EVALUATE, Scope.READ}),
        ("read write", {Scope.READ, Scope.WRITE}),
        ("READ, write", {Scope.READ, Scope.WRITE}),
        ("admin read write", {Scope.READ, Scope.CHAT, Scope.EVALUATE, Scope.WRITE, Scope.ADMIN}),
    ],
)
def test_scopes_expand_by_implication(text: str, granted: set[Scope]) -> None:
    assert parse_scopes(text) == granted


@pytest.mark.parametrize("text", ["", "  ", "read delete", "superuser"])
def test_bad_scopes(text: str) -> None:
    with pytest.raises(InvalidScopeError):
        parse_scopes(text)


def test_format_scopes_round_trips() -> None:
    assert format_scopes(parse_scopes("admin")) == "read chat evaluate write admin"
    assert parse_scopes(format_scopes({Scope.WRITE})) == {Scope.READ, Scope.WRITE}
    assert str(Scope.WRITE) == "write" and Scope("write") is Scope.WRITE
