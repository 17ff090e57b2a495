"""The SSE decoder against the event-stream spec, and fuzzed: splitting never changes events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgrid_nb.errors import StreamParseError
from llmgrid_nb.sse import SSEDecoder, ServerSentEvent


def decode_all(chunks: list[bytes]) -> list[ServerSentEvent]:
    dec = SSEDecoder()
    out = []
    for c in chunks:
        out.extend(dec.decode(c))
    out.extend(dec.flush())
    return out


def datas(chunks: list[bytes]) -> list[str]:
    return [e.data for e in decode_all(chunks)]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_dispatches_the_same_events(eol: bytes) -> None:
    body = eol.join([b"data: one", b"", b"data: two", b"", b""])
    assert datas([body]) == ["one", "two"]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    assert datas([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == ["a", "b"]


def test_comments_and_keepalives_are_skipped() -> None:
    assert datas([b": keep-alive\n\n:\ndata: x\n: another\n\n"]) == ["x"]


def test_space_after_colon_is_optional_and_only_one_is_removed() -> None:
    assert datas([b"data:x\n\ndata:  y\n\n"]) == ["x", " y"]


def test_multiline_data_is_joined_with_lf() -> None:
    assert datas([b"data: a\ndata: b\ndata\n\n"]) == ["a\nb\n"]


def test_event_id_and_retry_fields() -> None:
    events = decode_all([b"event: delta\nid: 7\nretry: 1500\ndata: {}\n\ndata: next\n\n"])
    assert events[0] == ServerSentEvent("delta", "{}", "7", 1500)
    assert events[1].event == "message" and events[1].id == "7"


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    events = decode_all([b"retry: 12a\nid: a\x00b\ndata: x\n\n"])
    assert events[0].retry is None and events[0].id == ""


def test_blank_event_without_data_dispatches_nothing() -> None:
    assert decode_all([b"event: ping\n\n\n\ndata: x\n\n"]) == [ServerSentEvent("message", "x")]


def test_utf8_sequence_split_across_reads_is_reassembled() -> None:
    raw = "data: héllo — 世界 🙂\n\n".encode()
    chunks = [raw[i:i + 1] for i in range(len(raw))]
    assert datas(chunks) == ["héllo — 世界 🙂"]


def test_invalid_utf8_is_replaced_and_reported() -> None:
    dec = SSEDecoder()
    events = dec.decode(b"data: a\xff\xfeb\n\n")
    assert events[0].data == "a\ufffd\ufffdb"
    assert dec.replaced_invalid_utf8


def test_unterminated_event_at_end_is_discarded_as_the_spec_says() -> None:
    dec = SSEDecoder()
    assert dec.decode(b"data: complete\n\ndata: partial") == [ServerSentEvent("message", "complete")]
    assert dec.flush() == []
    assert dec.discarded


def test_a_line_that_never_ends_hits_the_cap_with_a_clear_error() -> None:
    dec = SSEDecoder(max_line_chars=1000)
    with pytest.raises(StreamParseError, match="exceeded 1,000 characters"):
        for _ in range(100):
            dec.decode(b"x" * 100)


def test_a_one_mib_data_line_is_accepted_under_the_default_cap() -> None:
    payload = b"data: " + b"a" * (1 << 20) + b"\n\n"
    assert len(datas([payload[i:i + 65536] for i in range(0, len(payload), 65536)])[0]) == 1 << 20


EVENT_STREAM = (
    b": hello\r\nevent: a\r\ndata: {\"x\": 1}\r\n\r\n"
    b"data: line1\ndata: line2\n\n"
    b"id: 3\rdata: \xc3\xa9t\xc3\xa9 \xe4\xb8\x96\r\r"
    b"data: [DONE]\n\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(EVENT_STREAM)), max_size=20))
def test_arbitrary_splitting_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [EVENT_STREAM[a:b] for a, b in zip([0, *points], [*points, len(EVENT_STREAM)])]
    assert decode_all(chunks) == decode_all([EVENT_STREAM])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    decode_all(chunks)
