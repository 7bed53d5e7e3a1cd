"""The event-stream parser follows the WHATWG rules however the bytes are split."""

from __future__ import annotations

import pytest
from edgerag.llm import events
from edgerag.llm.types import ToolCall, Usage
from edgerag.sse import SseError, SseEvent, SseParser, encode_comment, encode_event
from hypothesis import given
from hypothesis import strategies as st

SPEC_STREAM = (
    b"\xef\xbb\xbf: a comment first\r\n"
    b"data: first\r\n"
    b"data:  two spaces keep one\r\n"
    b"\r\n"
    b"event: custom\n"
    b"id: 7\n"
    b"retry: 1500\n"
    b"data\n"  # no colon: a data field with an empty value
    b"data:x\n"
    b"\n"
    b"id: only-an-id\n"
    b"\n"  # no data: not dispatched, but the id is remembered
    b"unknown: field\r"
    b"data: cr endings\r"
    b"\r"
)
EXPECTED = [
    SseEvent(data="first\n two spaces keep one"),
    SseEvent(data="\nx", event="custom", id="7", retry=1500),
    SseEvent(data="cr endings", id="only-an-id"),
]


def _parse(chunks: list[bytes]) -> tuple[list[SseEvent], bool]:
    parser = SseParser()
    out = [event for chunk in chunks for event in parser.feed(chunk)]
    return out, parser.close()


def test_the_spec_rules() -> None:
    assert _parse([SPEC_STREAM]) == (EXPECTED, False)


@given(st.lists(st.integers(0, len(SPEC_STREAM)), max_size=12))
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [SPEC_STREAM[a:b] for a, b in zip([0, *points], [*points, len(SPEC_STREAM)], strict=True)]
    assert _parse(chunks) == (EXPECTED, False)


def test_a_truncated_stream_is_reported_and_its_last_event_dropped() -> None:
    events_seen, truncated = _parse([b"data: complete\n\ndata: cut off mid-ev"])
    assert events_seen == [SseEvent(data="complete")] and truncated


def test_multibyte_characters_split_across_chunks() -> None:
    raw = encode_event("naïve — 日本語")
    assert _parse([raw[:8], raw[8:9], raw[9:]])[0] == [SseEvent(data="naïve — 日本語")]


def test_an_endless_line_is_refused_not_buffered() -> None:
    parser = SseParser(max_event_bytes=100)
    with pytest.raises(SseError):
        list(parser.feed(b"data: " + b"x" * 200))
    parser = SseParser(max_event_bytes=100)
    with pytest.raises(SseError):
        list(parser.feed(b"data: 1234567890\n" * 20))


@given(st.text(), st.none() | st.sampled_from(["token", "done"]))
def test_encode_round_trips_any_text(data: str, event: str | None) -> None:
    parsed, truncated = _parse([encode_event(data, event=event), encode_comment("keep-alive")])
    normalised = data.replace("\r\n", "\n").replace("\r", "\n")
    assert parsed == [SseEvent(data=normalised, event=event or "message")] and not truncated


def test_encode_refuses_line_breaks_in_fields() -> None:
    with pytest.raises(ValueError):
        encode_event("x", event="a\nb")
    with pytest.raises(ValueError):
        encode_comment("a\rb")


def test_chat_events_round_trip_through_sse() -> None:
    sent: list[events.AnyEvent] = [
        events.TokenEvent(text="Hello\nworld"),
        events.ToolCallEvent(step=1, call=ToolCall(id="c1", name="search_knowledge_base", arguments="{}")),
        events.UsageEvent(model="m", provider="p", usage=Usage(prompt_tokens=3, completion_tokens=2)),
        events.DoneEvent(finish_reason="stop", model="m", provider="p", usage=Usage(prompt_tokens=3)),
    ]
    parsed, _ = _parse([b"".join(events.encode(e) for e in sent)])
    assert [events.decode(p) for p in parsed] == sent


def test_decode_rejects_mismatched_and_unknown_events() -> None:
    with pytest.raises(events.UnknownEventError):
        events.decode(SseEvent(data="{}", event="telemetry"))
    with pytest.raises(ValueError):
        events.decode(SseEvent(data='{"type": "token", "text": "x"}', event="done"))
    with pytest.raises(ValueError):
        events.decode(SseEvent(data="not json", event="token"))
