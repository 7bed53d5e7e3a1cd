"""R2's limits and the checks the local bucket runs on keys, values, metadata, ranges and conditions.

Two sources of errors, kept apart as at the edge:

- what workerd's R2 binding rejects before sending (wrong argument types, malformed ranges or
  checksums) raises ``TypeError`` / ``ValueError`` (JS ``TypeError`` / ``RangeError``) with workerd's
  wording;
- what the R2 service rejects raises :class:`R2Error` as workerd formats it:
  ``"<method>: <message> (<v4 code>)"``, for example
  ``"get: The requested range is not satisfiable (10039)"``. Messages and codes follow the R2 gateway
  as miniflare models it.

To extend: add the limit to :class:`R2Limits`, the check here, and a case to
``tests/contract/test_r2.py``.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edgerag_local.r2.errors import R2Error

__all__ = [
    "HASH_ALGORITHMS",
    "R2Limits",
    "check_conditional",
    "check_custom_metadata",
    "check_hashes",
    "check_http_metadata",
    "check_key",
    "condition_holds",
    "parse_range",
    "r2_error",
    "resolve_range",
]

# Option name -> (display name, digest size in bytes), in the order workerd checks them.
HASH_ALGORITHMS = {
    "md5": ("MD5", 16),
    "sha1": ("SHA-1", 20),
    "sha256": ("SHA-256", 32),
    "sha384": ("SHA-384", 48),
    "sha512": ("SHA-512", 64),
}

_HTTP_STRING_FIELDS = (
    "contentType",
    "contentLanguage",
    "contentDisposition",
    "contentEncoding",
    "cacheControl",
)

# R2 v4 error codes (subset).
INVALID_OBJECT_NAME = 10020
INVALID_MAX_KEYS = 10022
INVALID_ARGUMENT = 10029
METADATA_TOO_LARGE = 10012
ENTITY_TOO_LARGE = 100100
BAD_DIGEST = 10037
INVALID_RANGE = 10039


@dataclass(frozen=True)
class R2Limits:
    """R2 limits (developers.cloudflare.com/r2/platform/limits, Workers API reference, miniflare).

    ``max_custom_metadata_bytes`` is the gateway's 2 KiB budget for custom metadata as miniflare
    counts it (UTF-16 length of each key and value, doubled when a string has a code point >= 256);
    the public limits page quotes 8,192 bytes for all metadata of an object, so the stricter of the
    two is enforced. With ``include``, a list page holds at most ``max_list_with_metadata`` objects
    (R2 "may return fewer than limit" results then), so callers must page on ``truncated``.
    """

    max_key_bytes: int = 1024
    max_value_bytes: int = 5 * 1024**3 - 5 * 1024**2  # single-part upload: 5 GiB - 5 MiB
    max_custom_metadata_bytes: int = 2048
    max_list_limit: int = 1000
    max_list_with_metadata: int = 100
    max_delete_keys: int = 1000


def r2_error(method: str, message: str, code: int) -> R2Error:
    return R2Error(f"{method}: {message} ({code})")


def check_key(method: str, key: Any, limits: R2Limits) -> str:
    if not isinstance(key, str):
        raise TypeError(f"R2 {method}(): key must be a string, got {type(key).__name__}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise TypeError(f"R2 {method}(): key is not valid Unicode (lone surrogate)") from exc
    if size == 0 or size > limits.max_key_bytes:
        raise r2_error(method, "The specified object name is not valid.", INVALID_OBJECT_NAME)
    return key


def check_http_metadata(value: Any) -> dict[str, Any]:
    """Validate ``httpMetadata``; returns the fields that are set (``cacheExpiry`` as UTC datetime)."""
    if not isinstance(value, Mapping):
        raise TypeError("R2 put(): httpMetadata must be an object (R2HTTPMetadata)")
    unknown = sorted(set(value) - {*_HTTP_STRING_FIELDS, "cacheExpiry"})
    if unknown:
        # The runtime would ignore these; a misspelt header name is a bug worth failing on locally.
        raise TypeError(f"R2 put(): unknown httpMetadata field(s) {unknown}")
    fields: dict[str, Any] = {}
    for name in _HTTP_STRING_FIELDS:
        if value.get(name) is not None:
            if not isinstance(value[name], str):
                raise TypeError(f"R2 put(): httpMetadata.{name} must be a string")
            fields[name] = value[name]
    expiry = value.get("cacheExpiry")
    if expiry is not None:
        if not isinstance(expiry, datetime):
            raise TypeError("R2 put(): httpMetadata.cacheExpiry must be a datetime")
        fields["cacheExpiry"] = datetime.fromtimestamp(
            math.floor(expiry.timestamp() * 1000) / 1000, tz=UTC
        )  # a JS Date: milliseconds
    return fields


def _serialised_length(text: str) -> int:
    units = len(text.encode("utf-16-le")) // 2
    return units * 2 if any(ord(char) >= 256 for char in text) else units


def check_custom_metadata(value: Any, limits: R2Limits) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError("R2 put(): customMetadata must be an object of strings")
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, str):
            raise TypeError(f"R2 put(): customMetadata values must be strings, got {name!r}: {item!r}")
    size = sum(_serialised_length(name) + _serialised_length(item) for name, item in value.items())
    if size > limits.max_custom_metadata_bytes:
        raise r2_error(
            "put", "Your metadata headers exceed the maximum allowed metadata size.", METADATA_TOO_LARGE
        )
    return dict(value)


def check_hashes(options: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """The one integrity hash given (option name, expected digest), or None."""
    given = [name for name in HASH_ALGORITHMS if name in options]
    if len(given) > 1:
        raise TypeError("You cannot specify multiple hashing algorithms.")
    if not given:
        return None
    name = given[0]
    label, size = HASH_ALGORITHMS[name]
    value = options[name]
    if isinstance(value, str):
        if len(value) != size * 2:
            raise TypeError(f"{label} is {size * 2} hex characters, not {len(value)}")
        try:
            return name, bytes.fromhex(value)
        except ValueError:
            raise TypeError(f"Provided {label} wasn't a valid hex string") from None
    try:
        with memoryview(value) as view:
            digest = view.tobytes()
    except TypeError:
        raise TypeError(f"R2 put(): {name} must be a hex string or an ArrayBuffer") from None
    if len(digest) != size:
        raise TypeError(f"{label} is {size} bytes, not {len(digest)}")
    return name, digest


def bad_digest(name: str, provided: bytes, actual: bytes) -> R2Error:
    label = HASH_ALGORITHMS[name][0]
    return r2_error(
        "put",
        f"The {label} checksum you specified did not match what we received.\n"
        f"You provided a {label} checksum with value: {binascii.hexlify(provided).decode()}\n"
        f"Actual {label} was: {binascii.hexlify(actual).decode()}",
        BAD_DIGEST,
    )


def check_conditional(value: Any) -> dict[str, Any]:
    """Validate an ``onlyIf`` object (R2Conditional)."""
    if not isinstance(value, Mapping):
        raise TypeError("R2 onlyIf must be an object (R2Conditional)")
    allowed = {"etagMatches", "etagDoesNotMatch", "uploadedBefore", "uploadedAfter", "secondsGranularity"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise TypeError(f"R2 onlyIf: unknown field(s) {unknown}")
    for name in ("etagMatches", "etagDoesNotMatch"):
        etag = value.get(name)
        if etag is None:
            continue
        if not isinstance(etag, str):
            raise TypeError(f"R2 onlyIf.{name} must be a string")
        if len(etag) >= 2 and etag.startswith('"') and etag.endswith('"'):
            raise TypeError(f"Conditional ETag should not be wrapped in quotes ({etag}).")
    for name in ("uploadedBefore", "uploadedAfter"):
        if value.get(name) is not None and not isinstance(value[name], datetime):
            raise TypeError(f"R2 onlyIf.{name} must be a datetime")
    return {name: item for name, item in value.items() if item is not None}


def condition_holds(cond: Mapping[str, Any], current: tuple[str, int] | None) -> bool:
    """Whether ``onlyIf`` passes against the stored object's (etag, uploaded ms), or its absence.

    HTTP conditional semantics (RFC 9110 section 13.2.2): an etag test that passes overrides the
    matching date test, as R2 (and miniflare's model of it) does.
    """
    matches = cond.get("etagMatches")
    not_matches = cond.get("etagDoesNotMatch")
    before = cond.get("uploadedBefore")
    after = cond.get("uploadedAfter")
    if current is None:
        return matches is None and after is None
    etag, uploaded_ms = current

    def truncate(ms: int) -> int:
        return ms // 1000 * 1000 if cond.get("secondsGranularity") else ms

    def millis(moment: datetime) -> int:
        return truncate(math.floor(moment.timestamp() * 1000))

    last_modified = truncate(uploaded_ms)
    if_match = matches is None or matches in ("*", etag)
    if_none_match = not_matches is None or not_matches not in ("*", etag)
    if_modified_since = (
        after is None or millis(after) < last_modified or (not_matches is not None and if_none_match)
    )
    if_unmodified_since = (
        before is None or last_modified < millis(before) or (matches is not None and if_match)
    )
    return if_match and if_none_match and if_modified_since and if_unmodified_since


def _range_number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"R2 get(): range.{name} must be a number")
    shown = int(value) if isinstance(value, float) and value.is_integer() else value
    if value < 0:
        what = "Starting offset" if name == "offset" else name.capitalize()
        prefix = "Invalid suffix." if name == "suffix" else "Invalid range."
        raise ValueError(f"{prefix} {what} ({shown}) must be greater than or equal to 0.")
    if not float(value).is_integer():
        what = "Starting offset" if name == "offset" else name.capitalize()
        raise ValueError(f"Invalid range. {what} ({shown}) must be an integer, not floating point.")
    return int(value)


def parse_range(spec: Any) -> tuple[int | None, int | None, int | None]:
    """``(offset, length, suffix)`` from a ``range`` option, checked as workerd checks it."""
    if not isinstance(spec, Mapping):
        raise TypeError("R2 get(): range must be an object (R2Range)")
    unknown = sorted(set(spec) - {"offset", "length", "suffix"})
    if unknown:
        raise TypeError(f"R2 get(): unknown range field(s) {unknown}")
    offset = None if spec.get("offset") is None else _range_number("offset", spec["offset"])
    length = None if spec.get("length") is None else _range_number("length", spec["length"])
    suffix = None
    if spec.get("suffix") is not None:
        if offset is not None:
            raise TypeError("Suffix is incompatible with offset.")
        if length is not None:
            raise TypeError("Suffix is incompatible with length.")
        suffix = _range_number("suffix", spec["suffix"])
    return offset, length, suffix


def resolve_range(parsed: tuple[int | None, int | None, int | None], size: int) -> tuple[int, int]:
    """``(offset, length)`` of the bytes a parsed range selects in an object of ``size`` bytes.

    As the R2 service does: a length or suffix past the end is clamped, an empty selection or an
    offset past the end is unsatisfiable.
    """
    offset, length, suffix = parsed
    unsatisfiable = r2_error("get", "The requested range is not satisfiable", INVALID_RANGE)
    if suffix is not None:
        if suffix == 0:
            raise unsatisfiable
        length = min(suffix, size)
        offset = size - length
    offset = 0 if offset is None else offset
    length = size - offset if length is None else length
    if offset > size or length <= 0:
        raise unsatisfiable
    return offset, min(length, size - offset)
