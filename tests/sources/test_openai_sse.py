"""The direct OpenAI-compatible path: chunk parsing, and the wire over real loopback sockets."""

from __future__ import annotations

import json
import time

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.errors import ProviderError
from llmgrid_nb.events import Error, Reasoning, Token, ToolCall, Usage
from llmgrid_nb.sources.openai_sse import OpenAIChunkParser
from llmgrid_nb.sse import ServerSentEvent


def chunk(delta: dict | None = None, finish: str | None = None, **extra: object) -> str:
    obj: dict = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
                 "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    obj.update(extra)
    return json.dumps(obj)


def sse(*datas: str, eol: bytes = b"\n") -> bytes:
    return b"".join(b"data: " + d.encode() + eol + eol for d in datas)


# -- the pure parser ------------------------------------------------------------------------

def test_role_chunk_yields_nothing_and_content_yields_tokens() -> None:
    p = OpenAIChunkParser("s")
    assert p.feed(chunk({"role": "assistant", "content": ""}), 0.1) == []
    assert p.feed(chunk({"content": "Hi"}), 0.2) == [Token("s", 0.2, "Hi")]


def test_reasoning_content_and_reasoning_fields_are_reasoning_events() -> None:
    p = OpenAIChunkParser("s")
    assert p.feed(chunk({"reasoning_content": "think"}), 1.0) == [Reasoning("s", 1.0, "think")]
    assert p.feed(chunk({"reasoning": "more"}), 1.1) == [Reasoning("s", 1.1, "more")]


def test_final_usage_chunk_with_empty_choices_is_parsed() -> None:
    p = OpenAIChunkParser("s")
    data = json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7,
                                                 "completion_tokens_details": {"reasoning_tokens": 2}}})
    assert p.feed(data, 2.0) == [Usage("s", 2.0, 5, 7, 2)]


def test_tool_call_fragments_are_assembled_at_finish() -> None:
    p = OpenAIChunkParser("s")
    p.feed(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                  "function": {"name": "get_weather", "arguments": ""}}]}), 1.0)
    p.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}), 1.1)
    p.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}), 1.2)
    events = p.feed(chunk({}, finish="tool_calls"), 1.3)
    assert events == [ToolCall("s", 1.3, "call_1", "get_weather", '{"city": "Oslo"}')]
    assert json.loads(events[0].arguments) == {"city": "Oslo"}


def test_error_chunk_mid_stream_raises_and_is_never_a_complete_answer() -> None:
    p = OpenAIChunkParser("s")
    p.feed(chunk({"content": "partial"}), 1.0)
    with pytest.raises(ProviderError, match="server had an error"):
        p.feed(json.dumps({"error": {"message": "The server had an error", "type": "server_error"}}), 1.1)


def test_malformed_json_is_a_warning_and_parsing_goes_on() -> None:
    p = OpenAIChunkParser("s")
    [warning] = p.feed("{not json", 1.0)
    assert isinstance(warning, Error) and not warning.fatal and "malformed" in warning.message
    assert p.feed(chunk({"content": "ok"}), 1.1) == [Token("s", 1.1, "ok")]


def test_stream_end_without_finish_reason_or_done_is_truncated() -> None:
    p = OpenAIChunkParser("s")
    p.feed(chunk({"content": "half"}), 1.0)
    with pytest.raises(ProviderError, match="ended before the response was complete"):
        p.finish(1.5)


def test_done_after_content_without_a_finish_reason_is_cut_short() -> None:
    """llama-cpp-python's server ends a stream that a newer request interrupted this way."""
    p = OpenAIChunkParser("s")
    p.feed(chunk({"content": "half"}), 1.0)
    p.message(ServerSentEvent("message", "[DONE]"), 1.1)
    with pytest.raises(ProviderError, match="cut short") as info:
        p.finish(1.2)
    assert info.value.kind == "truncated"


def test_a_role_chunk_then_done_is_no_answer_and_is_retried() -> None:
    """A busy llama-cpp-python server answers 200, one role chunk, then [DONE]."""
    p = OpenAIChunkParser("s")
    p.feed(chunk({"role": "assistant"}), 1.0)
    p.message(ServerSentEvent("message", "[DONE]"), 1.1)
    with pytest.raises(ProviderError, match="the server sent no answer: 1 message") as info:
        p.finish(1.2)
    assert info.value.retryable and info.value.kind == "empty"


def test_stream_end_without_done_but_with_finish_reason_is_complete() -> None:
    p = OpenAIChunkParser("s")
    p.feed(chunk({"content": "all"}, finish="stop"), 1.0)
    [done] = p.finish(1.1)
    assert done.finish_reason == "stop"


# -- over the wire ---------------------------------------------------------------------------

def source(server: ScriptedServer, **kw: object) -> lg.OpenAICompatible:
    return lg.OpenAICompatible("m", server.url + "/v1", name="wire", **kw)  # type: ignore[arg-type]


STREAM = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hél"}),
          chunk({"content": "lo 世界"}), chunk({}, finish="stop"),
          json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}), "[DONE]"]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings_and_byte_by_byte_reads(scripted: ScriptedServer, eol: bytes) -> None:
    raw = b": keep-alive" + eol + eol + sse(*STREAM, eol=eol)
    scripted.scripts.append(Script(body=[raw[i:i + 3] for i in range(0, len(raw), 3)]))
    grid = lg.run("hi", [source(scripted)], retries=0)
    assert grid.texts == {"wire": "Héllo 世界"}
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.finish_reason == "stop"
    assert row.output_tokens == 2 and row.tokens_source == "usage" and row.prompt_tokens == 3


def test_request_asks_for_usage_and_streaming(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(*STREAM)]))
    lg.run("hi", [source(scripted, temperature=0.2, max_tokens=9)], system="be brief", retries=0)
    body = json.loads(scripted.requests[0].split(b"\r\n\r\n", 1)[1])
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["temperature"] == 0.2 and body["max_tokens"] == 9


def test_event_and_id_fields_and_multiline_data_over_the_wire(scripted: ScriptedServer) -> None:
    raw = (b"event: message\nid: 1\nretry: 100\ndata: " + chunk({"content": "a"}).encode() + b"\n\n"
           + b"data: {\"choices\": [{\"index\": 0,\ndata: \"delta\": {\"content\": \"b\"}, \"finish_reason\": \"stop\"}]}\n\n")
    scripted.scripts.append(Script(body=[raw]))
    grid = lg.run("hi", [source(scripted)], retries=0)
    assert grid.texts["wire"] == "ab"


def test_stream_without_done_after_finish_reason_completes(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(*STREAM[:4])]))
    grid = lg.run("hi", [source(scripted)], retries=0)
    assert grid.summary.iloc[0].status == "done"
    assert grid.summary.iloc[0].tokens_source in ("tokenizer", "chunks")


def test_connection_closed_mid_answer_keeps_partial_text(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(*STREAM[:3])], abort=True))
    grid = lg.run("hi", [source(scripted)], retries=2)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.attempts == 1  # no retry once tokens arrived
    assert grid.texts["wire"] == "Héllo 世界"
    [err] = [e for e in grid.events if isinstance(e, Error) and e.fatal]
    assert err.partial_text == "Héllo 世界"


def test_html_error_page_instead_of_sse_is_reported(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[b"<html><body>502 Bad Gateway</body></html>"],
                                   headers={"Content-Type": "text/html"}))
    grid = lg.run("hi", [source(scripted)], retries=0)
    assert "expected an event stream but the server sent text/html" in grid.summary.iloc[0].error


def test_non_streaming_json_answer_is_accepted(scripted: ScriptedServer) -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
                         "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    scripted.scripts.append(Script(body=[json.dumps(body).encode()],
                                   headers={"Content-Type": "application/json"}))
    grid = lg.run("hi", [source(scripted)], retries=0)
    assert grid.texts["wire"] == "whole" and grid.summary.iloc[0].status == "done"


def test_401_names_the_key_variable_and_never_echoes_the_key(scripted: ScriptedServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-planted-key-0123456789"
    monkeypatch.setenv("MY_PROVIDER_KEY", key)
    scripted.scripts.append(Script(status="401 Unauthorized", headers={"Content-Type": "application/json"},
                                   body=[json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode()]))
    grid = lg.run("hi", [lg.OpenAICompatible("m", scripted.url + "/v1", key_env=["MY_PROVIDER_KEY"], name="k")],
                  retries=2)
    error = grid.summary.iloc[0].error
    assert "authentication failed (HTTP 401)" in error and "check MY_PROVIDER_KEY" in error
    assert key not in error and key not in repr(grid.events)
    assert grid.summary.iloc[0].attempts == 1
    assert f"Bearer {key}".encode() in scripted.requests[0]


def test_missing_key_fails_that_pane_with_the_variable_name() -> None:
    grid = lg.run("hi", [lg.OpenAICompatible("m", "http://127.0.0.1:9/v1", key_env=["NOPE_UNSET_KEY"], name="k")])
    assert grid.summary.iloc[0].error == "no API key: set NOPE_UNSET_KEY or pass api_key="


def test_stall_with_socket_open_times_out_and_closes_the_socket(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(*STREAM[:2])], hold=True))
    t = time.monotonic()
    grid = lg.run("hi", [source(scripted)], stall_timeout=0.5, retries=0)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.error.startswith("stalled: no data for 0.5 s")
    assert grid.texts["wire"] == "Hél"
    deadline = time.monotonic() + 1.0
    while not scripted.closed_at and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scripted.closed_at and scripted.closed_at[0] - t < 2.0


def test_refused_connection_is_retried_then_reported() -> None:
    grid = lg.run("hi", [lg.OpenAICompatible("m", "http://127.0.0.1:9/v1", name="x")], retries=1)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.attempts == 2 and "cannot connect to 127.0.0.1:9" in row.error


def test_several_choices_fail_together_each_keeping_its_own_partial_text(scripted: ScriptedServer) -> None:
    two = [json.dumps({"choices": [{"index": 0, "delta": {"content": "zero"}, "finish_reason": None}]}),
           json.dumps({"choices": [{"index": 1, "delta": {"content": "one"}, "finish_reason": None}]})]
    scripted.scripts.append(Script(body=[sse(*two)], abort=True))
    grid = lg.run("hi", [source(scripted)], params={"n": 2}, retries=2)
    assert grid.texts == {"wire": "zero", "wire[1]": "one"}
    assert grid.statuses == {"wire": "failed", "wire[1]": "failed"}
    fatal = {e.source: e.partial_text for e in grid.events if isinstance(e, Error) and e.fatal}
    assert fatal == {"wire": "zero", "wire[1]": "one"}
    assert list(grid.summary.attempts) == [1, 1]  # content had arrived: no retry


def test_cancelling_one_choices_pane_stops_its_stream(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(chunk({"content": "a"})), 5.0]))
    grid = lg.start("hi", [source(scripted)], params={"n": 2}, widget=False)
    deadline = time.monotonic() + 5
    while grid.statuses.get("wire") != "streaming" and time.monotonic() < deadline:
        time.sleep(0.01)
    grid.cancel("wire[1]")
    grid.wait(5)
    assert grid.statuses == {"wire": "cancelled", "wire[1]": "cancelled"}
