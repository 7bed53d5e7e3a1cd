"""What the HTTP adapters share: status -> :class:`FailureKind`, ``Retry-After``, and safe messages.

Both HTTP providers (OpenAI-compatible, Anthropic) fail the same ways on the wire, so the mapping
lives here once:

- ``429`` -> ``RATE_LIMITED``; ``408``/``504`` -> ``TIMEOUT``; other ``5xx`` (Anthropic's ``529``
  "overloaded" included) -> ``SERVER``; ``401``/``403`` -> ``AUTH``; other ``4xx`` ->
  ``INVALID_REQUEST``; anything else that is not ``2xx`` -> ``BAD_RESPONSE``.
- the delay a provider asks for: ``retry-after-ms`` (milliseconds; OpenAI sends it beside
  ``Retry-After``) first, then ``Retry-After`` as delta-seconds or an HTTP-date (RFC 9110 10.2.3),
  measured against an injected clock so tests and Pyodide never depend on the wall clock.
- the provider's own error text (``{"error": {"message": ...}}`` from OpenAI-compatible servers,
  ``{"type": "error", "error": {"type": ..., "message": ...}}`` from Anthropic), cut to a few hundred
  characters, with every secret the adapter holds replaced by ``[redacted]``: some providers echo
  (part of) the key they were given, and a :class:`ProviderError` message must never hold one.

To support a new status convention, extend :func:`kind_for_status`; adapters never map statuses
themselves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from dedalus.providers.base import FailureKind, ProviderError

__all__ = [
    "error_text",
    "kind_for_status",
    "parse_retry_after",
    "redact",
    "status_error",
]

_MAX_MESSAGE = 300


def kind_for_status(status: int) -> FailureKind:
    """The failure kind of a non-2xx HTTP status."""
    if status == 429:
        return FailureKind.RATE_LIMITED
    if status in (408, 504):
        return FailureKind.TIMEOUT
    if 500 <= status <= 599:
        return FailureKind.SERVER
    if status in (401, 403):
        return FailureKind.AUTH
    if 400 <= status <= 499:
        return FailureKind.INVALID_REQUEST
    return FailureKind.BAD_RESPONSE


def parse_retry_after(headers: Mapping[str, str], now: Callable[[], float]) -> float | None:
    """Seconds the provider asked us to wait, or None (absent or unparseable headers are ignored)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis.strip())
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may parse without a zone
        return None
    return max(0.0, when.timestamp() - now())


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-trivial secret replaced (short strings would redact ordinary words)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def error_text(body: bytes) -> str:
    """The provider's own error message from an error body (JSON or plain text), or ''."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        return text[:_MAX_MESSAGE]
    message = _message_of(parsed)
    return (message if message is not None else text)[:_MAX_MESSAGE]


def _message_of(parsed: Any) -> str | None:
    if isinstance(parsed, str):
        return parsed
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        if isinstance(message, str):
            return f"{kind}: {message}" if isinstance(kind, str) and kind not in message else message
    if isinstance(error, str):
        return error
    for key in ("message", "detail"):
        value = parsed.get(key)
        if isinstance(value, str):
            return value
    return None


def status_error(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Iterable[str | None],
    now: Callable[[], float],
) -> ProviderError:
    """The :class:`ProviderError` for a non-2xx response (``body`` is what was read of it)."""
    detail = redact(error_text(body), secrets)
    message = f"{provider} answered HTTP {status}" + (f": {detail}" if detail else "")
    return ProviderError(
        kind_for_status(status),
        message,
        provider=provider,
        status=status,
        retry_after=parse_retry_after(headers, now),
    )
