"""The native Anthropic Messages path: the pure decoder, and the wire over real loopback sockets."""

from __future__ import annotations

import json

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.errors import ProviderError
from llmgrid_nb.events import Done, Error, Reasoning, Token, ToolCall, Usage
from llmgrid_nb.sources.anthropic import Anthropic, AnthropicDecoder
from llmgrid_nb.sources.base import Prompt
from llmgrid_nb.sse import ServerSentEvent


def ev(kind: str, **fields: object) -> ServerSentEvent:
    return ServerSentEvent(kind, json.dumps({"type": kind, **fields}))


START = ev("message_start", message={"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                     "usage": {"input_tokens": 12, "cache_read_input_tokens": 3,
                                               "output_tokens": 1}})


def text_stream(*pieces: str, stop: str = "end_turn", output_tokens: int = 5) -> list[ServerSentEvent]:
    return [START, ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            ev("ping"),
            *(ev("content_block_delta", index=0, delta={"type": "text_delta", "text": p}) for p in pieces),
            ev("content_block_stop", index=0),
            ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
               usage={"output_tokens": output_tokens}),
            ev("message_stop")]


def decode(events: list[ServerSentEvent], **kw: bool) -> tuple[AnthropicDecoder, list[object]]:
    d = AnthropicDecoder("a", **kw)
    out: list[object] = []
    for i, e in enumerate(events):
        out.extend(d.message(e, float(i)))
    out.extend(d.finish(99.0))
    return d, out


def test_text_deltas_are_tokens_and_end_turn_is_stop() -> None:
    d, out = decode(text_stream("Hel", "lo"))
    assert [e.text for e in out if isinstance(e, Token)] == ["Hel", "lo"]
    assert d.done and out[-1] == Done("a", 99.0, "stop")


def test_usage_counts_cache_tokens_in_the_prompt_and_output_is_cumulative() -> None:
    _, out = decode(text_stream("x", output_tokens=42))
    usage = [e for e in out if isinstance(e, Usage)]
    assert usage[-1].prompt_tokens == 15 and usage[-1].output_tokens == 42
    assert usage[-1].server == {"cache_read_tokens": 3.0}


@pytest.mark.parametrize(("stop", "ours"), [("end_turn", "stop"), ("stop_sequence", "stop"),
                                            ("max_tokens", "length"), ("refusal", "refusal"),
                                            ("pause_turn", "pause_turn")])
def test_stop_reasons_map_to_our_vocabulary(stop: str, ours: str) -> None:
    _, out = decode(text_stream("x", stop=stop))
    assert out[-1].finish_reason == ours  # type: ignore[attr-defined]


def test_thinking_is_reasoning_and_the_signature_is_ignored() -> None:
    events = [START, ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
              ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Let me "}),
              ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "think."}),
              ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "EqQBCg=="}),
              ev("content_block_stop", index=0),
              ev("content_block_start", index=1, content_block={"type": "text", "text": ""}),
              ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Answer"}),
              ev("content_block_stop", index=1),
              ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 30}),
              ev("message_stop")]
    _, out = decode(events)
    assert "".join(e.text for e in out if isinstance(e, Reasoning)) == "Let me think."
    assert "".join(e.text for e in out if isinstance(e, Token)) == "Answer"
    assert "EqQBCg" not in repr(out)


def test_tool_input_fragments_become_one_tool_call_when_the_block_stops() -> None:
    events = [START,
              ev("content_block_start", index=0, content_block={"type": "tool_use", "id": "toolu_1",
                                                                "name": "get_weather", "input": {}}),
              ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": ""}),
              ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
              ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": 'ris"}'}),
              ev("content_block_stop", index=0),
              ev("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
              ev("message_stop")]
    _, out = decode(events)
    [call] = [e for e in out if isinstance(e, ToolCall)]
    assert (call.id, call.name, json.loads(call.arguments)) == ("toolu_1", "get_weather", {"city": "Paris"})
    assert out[-1].finish_reason == "tool_calls"  # type: ignore[attr-defined]


def test_max_tokens_mid_tool_json_keeps_the_partial_arguments() -> None:
    events = [START,
              ev("content_block_start", index=0, content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}}),
              ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": '{"q": "abc'}),
              ev("message_delta", delta={"stop_reason": "max_tokens"}, usage={"output_tokens": 4}),
              ev("message_stop")]
    _, out = decode(events)
    [call] = [e for e in out if isinstance(e, ToolCall)]
    assert call.arguments == '{"q": "abc' and out[-1].finish_reason == "length"  # type: ignore[attr-defined]


def test_error_event_says_what_anthropic_said_and_overloaded_is_retryable() -> None:
    d = AnthropicDecoder("a")
    d.message(START, 0.0)
    err = ServerSentEvent("error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    with pytest.raises(ProviderError) as info:
        d.message(err, 1.0)
    assert info.value.message == "Anthropic overloaded_error: Overloaded" and info.value.retryable
    bad = ServerSentEvent("error", '{"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}')
    with pytest.raises(ProviderError) as info:
        AnthropicDecoder("a").message(bad, 1.0)
    assert not info.value.retryable


def test_a_stream_cut_before_the_stop_reason_is_truncated() -> None:
    d = AnthropicDecoder("a")
    for e in text_stream("partial")[:4]:
        d.message(e, 0.0)
    with pytest.raises(ProviderError, match="ended before Anthropic's stop reason"):
        d.finish(1.0)


def test_message_delta_without_message_stop_is_complete() -> None:
    """Recorded SDK fixtures end right after the last data line: message_stop may be lost."""
    d = AnthropicDecoder("a")
    for e in text_stream("all")[:-1]:
        d.message(e, 0.0)
    assert d.finish(1.0)[-1] == Done("a", 1.0, "stop")


def test_an_answer_with_nothing_in_it_is_a_retryable_failure() -> None:
    d = AnthropicDecoder("a")
    for e in [START, ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 0}),
              ev("message_stop")]:
        d.message(e, 0.0)
    with pytest.raises(ProviderError, match="no answer") as info:
        d.finish(1.0)
    assert info.value.retryable


def test_malformed_data_is_a_warning_and_decoding_goes_on() -> None:
    d = AnthropicDecoder("a")
    [warning] = d.message(ServerSentEvent("content_block_delta", "{not json"), 0.0)
    assert isinstance(warning, Error) and not warning.fatal


def test_resume_strips_the_prefill_white_space_and_the_continuations_lead() -> None:
    src = Anthropic("claude", api_key="k")
    body = src.request_body(Prompt("q").continued("The answer is "))
    assert body["messages"][-1] == {"role": "assistant", "content": "The answer is"}
    _, out = decode(text_stream(" 42."), strip_leading_space=True)
    assert [e.text for e in out if isinstance(e, Token)] == ["42."]


# -- over the wire ---------------------------------------------------------------------------

def wire(events: list[ServerSentEvent]) -> bytes:
    return b"".join(f"event: {e.event}\ndata: {e.data}\n\n".encode() for e in events)


def test_stream_over_loopback_split_into_tiny_reads(scripted: ScriptedServer) -> None:
    raw = wire(text_stream("Héllo", " 世界"))
    scripted.scripts.append(Script(body=[raw[i:i + 3] for i in range(0, len(raw), 3)]))
    grid = lg.run("hi", [Anthropic("claude-x", base_url=scripted.url, api_key="sk-ant-test", name="c")],
                  system="be brief", max_tokens=64, retries=0)
    assert grid.texts == {"c": "Héllo 世界"}
    row = grid.summary.iloc[0]
    assert (row.status, row.finish_reason, row.prompt_tokens, row.output_tokens, row.route) == (
        "done", "stop", 15, 5, "direct-anthropic")
    head, _, body = scripted.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/messages ") and b"x-api-key: sk-ant-test" in head
    assert b"anthropic-version: 2023-06-01" in head
    sent = json.loads(body)
    assert sent["system"] == "be brief" and sent["max_tokens"] == 64 and sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert "sk-ant-test" not in repr(grid.events) and "sk-ant-test" not in grid.summary.to_string()


def test_max_tokens_defaults_and_thinking_adds_its_budget() -> None:
    prompt = Prompt("q")
    assert Anthropic("m", api_key="k").request_body(prompt)["max_tokens"] == 4096
    body = Anthropic("m", api_key="k", thinking_budget=2048).request_body(prompt)
    assert body["max_tokens"] == 4096 + 2048 and body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_http_529_overloaded_is_retried_and_quotes_anthropic(scripted: ScriptedServer) -> None:
    error = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    for _ in range(2):
        scripted.scripts.append(Script(status="529 Overloaded", headers={"Content-Type": "application/json"},
                                       body=[error]))
    grid = lg.run("hi", [Anthropic("m", base_url=scripted.url, api_key="k", name="c")], retries=1)
    row = grid.summary.iloc[0]
    assert row.attempts == 2 and row.error == "server error (HTTP 529): Anthropic overloaded_error: Overloaded"


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    grid = lg.run("hi", ["anthropic/claude-sonnet-4-5"])
    row = grid.summary.iloc[0]
    assert row.route == "direct-anthropic"
    assert row.error == "no API key: set ANTHROPIC_API_KEY or pass api_key="
