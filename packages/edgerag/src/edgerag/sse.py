"""Server-sent events, parsed and written per the WHATWG HTML "event stream" rules.

:class:`SseParser` is incremental: feed it bytes as they arrive (in chunks split anywhere, even inside
a UTF-8 character or between ``\\r`` and ``\\n``) and it yields each :class:`SseEvent` as soon as its
terminating blank line has arrived. The rules it follows (html.spec.whatwg.org, "Parsing an event
stream"):

- lines end with ``\\r\\n``, ``\\n`` or ``\\r``; a UTF-8 BOM at the very start is dropped;
- a line starting with ``:`` is a comment (providers send keep-alives as comments): ignored;
- ``field: value`` — one leading space after the colon is removed; a line without a colon is a field
  with an empty value;
- ``data`` lines accumulate, joined with ``\\n`` (multi-line data); ``event`` sets the type, ``id``
  the last event id (ignored if it contains NUL), ``retry`` a reconnection time in ms (digits only);
  unknown fields are ignored;
- a blank line dispatches the event; an event with no data is not dispatched (but an ``id`` still
  updates the last event id); the type defaults to ``message``;
- at end of stream an unterminated event is discarded (:meth:`SseParser.close` reports whether one was
  pending, so callers can tell a truncated stream from a clean end).

:func:`encode_event` writes one event; multi-line data becomes several ``data:`` lines, so any text
round-trips. :func:`encode_comment` writes a heartbeat comment.

Limits: one event's data may hold at most ``max_event_bytes`` (default 1 MiB) and a single line at
most that much too: a peer that never sends a line break cannot make the parser buffer without bound
(:class:`SseError`).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SseError", "SseEvent", "SseParser", "encode_comment", "encode_event"]

_DEFAULT_MAX_EVENT_BYTES = 1024 * 1024


class SseError(ValueError):
    """The stream broke a limit (an over-long line or event)."""


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SseParser:
    """Incremental event-stream parser: ``for event in parser.feed(chunk): ...``."""

    def __init__(self, *, max_event_bytes: int = _DEFAULT_MAX_EVENT_BYTES) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max = max_event_bytes
        self._buffer = ""
        self._started = False
        self._pending_cr = False
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._retry: int | None = None
        self._has_fields = False
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        """Parse ``chunk`` and yield every event it completes."""
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        yield from self._lines(text)

    def close(self) -> bool:
        """End of stream: flush the decoder; True if an unterminated event was discarded."""
        rest = self._decoder.decode(b"", final=True)
        list(self._lines(rest))
        pending = bool(self._buffer) or self._has_fields
        self._buffer = ""
        self._reset()
        return pending

    def _lines(self, text: str) -> Iterator[SseEvent]:
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the \n of a \r\n split across chunks
        self._pending_cr = False
        buffer = self._buffer + text
        start = 0
        length = len(buffer)
        while True:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            if cr < 0 and lf < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, nxt = lf, lf + 1
            else:
                end = cr
                if cr + 1 < length:
                    nxt = cr + 2 if buffer[cr + 1] == "\n" else cr + 1
                else:
                    nxt = cr + 1
                    self._pending_cr = True
            event = self._line(buffer[start:end])
            if event is not None:
                yield event
            start = nxt
        self._buffer = buffer[start:]
        if len(self._buffer) > self._max:
            raise SseError(f"an event-stream line exceeds {self._max} characters")

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._has_fields = True
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                raise SseError(f"an event's data exceeds {self._max} characters")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._reset()
            return None
        event = SseEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self.last_event_id,
            retry=self._retry,
        )
        self._reset()
        return event

    def _reset(self) -> None:
        self._data = []
        self._data_size = 0
        self._event = ""
        self._retry = None
        self._has_fields = False


def encode_event(data: str, event: str | None = None, id: str | None = None) -> bytes:
    """One event in wire form; ``data`` may hold line breaks of any kind."""
    for name, value in (("event", event), ("id", id)):
        if value is not None and any(ch in value for ch in "\r\n"):
            raise ValueError(f"an SSE {name} cannot contain a line break")
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    lines.extend(f"data: {part}" for part in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment line (a heartbeat that keeps proxies from closing an idle stream)."""
    if any(ch in text for ch in "\r\n"):
        raise ValueError("an SSE comment cannot contain a line break")
    return f": {text}\n\n".encode() if text else b":\n\n"
