"""The native OpenAI Responses path: the pure decoder, the request, and the wire over loopback.

Event shapes follow OpenAI's streaming reference and the recorded bodies in the Vercel AI SDK's
``packages/openai/src/responses/__fixtures__`` (Azure's ``obfuscation`` fields included).
"""

from __future__ import annotations

import json

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.errors import ProviderError
from llmgrid_nb.events import Done, Error, Event, Reasoning, Refusal, Token, ToolCall, Usage
from llmgrid_nb.sources.base import Prompt
from llmgrid_nb.sources.openai_responses import OpenAIResponses, ResponsesDecoder
from llmgrid_nb.sse import ServerSentEvent


def ev(kind: str, named: bool = True, **fields: object) -> ServerSentEvent:
    """One event as OpenAI sends it: ``event: <type>`` and the same ``type`` in the JSON."""
    return ServerSentEvent(kind if named else "message", json.dumps({"type": kind, **fields}))


RESPONSE = {"id": "resp_1", "object": "response", "status": "in_progress", "model": "o4-mini",
            "instructions": "be brief", "output": [], "usage": None}
USAGE = {"input_tokens": 21, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 40,
         "output_tokens_details": {"reasoning_tokens": 28}, "total_tokens": 61}


def completed(usage: dict | None = None, **extra: object) -> ServerSentEvent:
    return ev("response.completed", response={**RESPONSE, "status": "completed", "usage": usage or USAGE, **extra})


def message_stream(*pieces: str, named: bool = True, end: ServerSentEvent | None = None,
                   **delta_fields: object) -> list[ServerSentEvent]:
    """A plain answer: created, in_progress, a message item with its text deltas, completed."""
    msg = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    return [ev("response.created", named, response=RESPONSE, sequence_number=0),
            ev("response.in_progress", named, response=RESPONSE, sequence_number=1),
            ev("response.output_item.added", named, output_index=0, item=msg),
            ev("response.content_part.added", named, item_id="msg_1", output_index=0, content_index=0,
               part={"type": "output_text", "annotations": [], "text": ""}),
            *(ev("response.output_text.delta", named, item_id="msg_1", output_index=0, content_index=0,
                 delta=p, logprobs=[], **delta_fields) for p in pieces),
            ev("response.output_text.done", named, item_id="msg_1", output_index=0, content_index=0,
               text="".join(pieces)),
            ev("response.content_part.done", named, item_id="msg_1", output_index=0, content_index=0,
               part={"type": "output_text", "annotations": [], "text": "".join(pieces)}),
            ev("response.output_item.done", named, output_index=0,
               item={**msg, "status": "completed",
                     "content": [{"type": "output_text", "annotations": [], "text": "".join(pieces)}]}),
            end or completed()]


def decode(events: list[ServerSentEvent]) -> tuple[ResponsesDecoder, list[Event]]:
    d = ResponsesDecoder("r")
    out: list[Event] = []
    for i, e in enumerate(events):
        out.extend(d.message(e, float(i)))
        if d.done:
            break
    out.extend(d.finish(99.0))
    return d, out


def texts(out: list[Event], kind: type) -> str:
    return "".join(e.text for e in out if isinstance(e, kind))  # type: ignore[attr-defined]


# -- the pure decoder -----------------------------------------------------------------------

@pytest.mark.parametrize("named", [True, False], ids=["event-lines", "type-only"])
def test_output_text_deltas_are_tokens_and_completed_is_stop(named: bool) -> None:
    d, out = decode(message_stream("Hel", "lo", named=named, end=completed()))
    assert [e.text for e in out if isinstance(e, Token)] == ["Hel", "lo"]
    assert d.done and out[-1] == Done("r", 99.0, "stop")
    assert [type(e) for e in out] == [Token, Token, Usage, Done]  # .done events repeat nothing


def test_completed_usage_has_input_output_and_reasoning_tokens() -> None:
    cached = {**USAGE, "input_tokens_details": {"cached_tokens": 16}}
    _, out = decode(message_stream("x", end=completed(cached)))
    [usage] = [e for e in out if isinstance(e, Usage)]
    assert (usage.prompt_tokens, usage.output_tokens, usage.reasoning_tokens) == (21, 40, 28)
    assert usage.server == {"cache_read_tokens": 16.0}


def test_reasoning_summary_parts_are_reasoning_separated_by_a_blank_line() -> None:
    rs = {"id": "rs_1", "type": "reasoning", "summary": []}

    def part(index: int, *deltas: str) -> list[ServerSentEvent]:
        return [ev("response.reasoning_summary_part.added", item_id="rs_1", output_index=0, summary_index=index,
                   part={"type": "summary_text", "text": ""}),
                *(ev("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=index,
                     delta=d, obfuscation="XXXXXXX") for d in deltas),
                ev("response.reasoning_summary_text.done", item_id="rs_1", output_index=0, summary_index=index,
                   text="".join(deltas)),
                ev("response.reasoning_summary_part.done", item_id="rs_1", output_index=0, summary_index=index,
                   part={"type": "summary_text", "text": "".join(deltas)})]

    events = [ev("response.output_item.added", output_index=0, item=rs),
              *part(0, "**Plan**", "\n\nCount."), *part(1, "**Check**", " twice."),
              ev("response.output_item.done", output_index=0, item={**rs, "summary": []}),
              *message_stream("42")[2:]]
    _, out = decode(events)
    assert texts(out, Reasoning) == "**Plan**\n\nCount.\n\n**Check** twice."
    assert texts(out, Token) == "42" and out[-1].finish_reason == "stop"  # type: ignore[attr-defined]


def test_raw_reasoning_text_deltas_are_reasoning() -> None:
    events = [ev("response.reasoning_text.delta", item_id="rs_1", output_index=0, content_index=0, delta="hmm "),
              ev("response.reasoning_text.delta", item_id="rs_1", output_index=0, content_index=0, delta="ok"),
              *message_stream("a")[2:]]
    _, out = decode(events)
    assert texts(out, Reasoning) == "hmm ok"


FC = {"id": "fc_1", "type": "function_call", "status": "in_progress", "arguments": "",
      "call_id": "call_2FQd", "name": "get_weather"}


def call_stream(*fragments: str, done_arguments: str | None = None) -> list[ServerSentEvent]:
    """A function call as OpenAI streams it (recorded gpt-5.1 shape, with obfuscation)."""
    full = "".join(fragments) if done_arguments is None else done_arguments
    return [ev("response.created", response=RESPONSE),
            ev("response.output_item.added", output_index=0, item=FC),
            *(ev("response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta=f,
                 obfuscation="H2d0mf8T42") for f in fragments),
            ev("response.function_call_arguments.done", item_id="fc_1", output_index=0, arguments=full),
            ev("response.output_item.done", output_index=0,
               item={**FC, "status": "completed", "arguments": full}),
            completed(output=[{**FC, "status": "completed", "arguments": full}])]


def test_function_call_fragments_become_one_tool_call_and_finish_is_tool_calls() -> None:
    _, out = decode(call_stream('{"', "city", '":"', "Beijing", '"}'))
    [call] = [e for e in out if isinstance(e, ToolCall)]
    assert (call.id, call.name, json.loads(call.arguments)) == ("call_2FQd", "get_weather", {"city": "Beijing"})
    assert call.t_s == 7.0  # at function_call_arguments.done, not at the end
    assert out[-1].finish_reason == "tool_calls"  # type: ignore[attr-defined]


def test_the_done_events_full_arguments_win_over_the_fragments() -> None:
    _, out = decode(call_stream('{"city": "Be', done_arguments='{"city": "Beijing"}'))
    [call] = [e for e in out if isinstance(e, ToolCall)]
    assert call.arguments == '{"city": "Beijing"}'


def test_a_call_closed_only_by_its_output_item_is_one_tool_call() -> None:
    events = [e for e in call_stream('{"a":', "1}") if json.loads(e.data)["type"]
              != "response.function_call_arguments.done"]
    _, out = decode(events)
    [call] = [e for e in out if isinstance(e, ToolCall)]
    assert (call.id, call.arguments) == ("call_2FQd", '{"a":1}')


def test_argument_fragments_keyed_by_output_index_alone_are_assembled() -> None:
    events = [ev("response.output_item.added", output_index=3, item={**FC, "id": "fc_9"}),
              ev("response.function_call_arguments.delta", output_index=3, delta="{}"),
              completed()]
    _, out = decode(events)
    [call] = [e for e in out if isinstance(e, ToolCall)]
    assert (call.id, call.name, call.arguments) == ("call_2FQd", "get_weather", "{}")


def test_refusal_deltas_are_a_refusal_and_the_finish_reason_reads_refusal() -> None:
    events = [ev("response.output_item.added", output_index=0, item={"id": "msg_1", "type": "message"}),
              ev("response.content_part.added", item_id="msg_1", output_index=0, content_index=0,
                 part={"type": "refusal", "refusal": ""}),
              ev("response.refusal.delta", item_id="msg_1", output_index=0, content_index=0, delta="I can't "),
              ev("response.refusal.delta", item_id="msg_1", output_index=0, content_index=0, delta="help."),
              ev("response.refusal.done", item_id="msg_1", output_index=0, content_index=0,
                 refusal="I can't help."),
              completed()]
    _, out = decode(events)
    assert texts(out, Refusal) == "I can't help." and texts(out, Token) == ""
    assert out[-1].finish_reason == "refusal"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("reason", "ours"), [("max_output_tokens", "length"),
                                              ("content_filter", "content_filter")])
def test_incomplete_maps_its_reason_and_keeps_the_usage(reason: str, ours: str) -> None:
    end = ev("response.incomplete", response={**RESPONSE, "status": "incomplete",
                                              "incomplete_details": {"reason": reason}, "usage": USAGE})
    d, out = decode(message_stream("cut sh", end=end))
    assert d.done and out[-1].finish_reason == ours  # type: ignore[attr-defined]
    assert [e.output_tokens for e in out if isinstance(e, Usage)] == [40]


def test_incomplete_with_nothing_answered_stands_as_length() -> None:
    """All output tokens went to hidden reasoning: an explained empty answer, not a failure."""
    end = ev("response.incomplete", response={**RESPONSE, "status": "incomplete",
                                              "incomplete_details": {"reason": "max_output_tokens"}})
    _, out = decode([ev("response.created", response=RESPONSE), end])
    assert out == [Done("r", 99.0, "length")]


@pytest.mark.parametrize(("code", "retryable"), [("rate_limit_exceeded", True), ("server_error", True),
                                                 ("invalid_prompt", False)])
def test_failed_response_raises_openais_code_and_message(code: str, retryable: bool) -> None:
    failed = ev("response.failed", response={**RESPONSE, "status": "failed",
                                             "error": {"code": code, "message": "Request too large"}})
    d = ResponsesDecoder("r")
    d.message(ev("response.created", response=RESPONSE), 0.0)
    with pytest.raises(ProviderError) as info:
        d.message(failed, 1.0)
    assert info.value.message == f"OpenAI {code}: Request too large"
    assert info.value.retryable is retryable and d.done


@pytest.mark.parametrize(("payload", "message", "retryable"), [
    # As OpenAI's reference documents it: the fields at the top level.
    ({"code": "server_error", "message": "Something went wrong", "param": None},
     "OpenAI server_error: Something went wrong", True),
    ({"code": None, "message": "Something went wrong", "param": None}, "OpenAI: Something went wrong", True),
    # As the API has sent it (recorded in the AI SDK's fixtures): nested under "error".
    ({"error": {"type": "server_error", "code": None, "message": "Sorry, something went wrong.", "param": None}},
     "OpenAI server_error: Sorry, something went wrong.", True),
    ({"error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "You exceeded your quota"}},
     "OpenAI insufficient_quota: You exceeded your quota", False),
])
def test_error_event_raises_what_openai_said(payload: dict, message: str, retryable: bool) -> None:
    d = ResponsesDecoder("r")
    d.message(message_stream("partial")[4], 0.0)
    with pytest.raises(ProviderError) as info:
        d.message(ev("error", sequence_number=2, **payload), 1.0)
    assert (info.value.message, info.value.retryable, info.value.kind) == (message, retryable, "stream_error")


def test_azure_obfuscation_fields_are_ignored() -> None:
    _, out = decode(message_stream("Hé", "llo", obfuscation="kX9pQ2mZ"))
    assert texts(out, Token) == "Héllo" and "kX9pQ2mZ" not in repr(out)


def test_unknown_and_hosted_tool_events_are_ignored() -> None:
    ws = {"id": "ws_1", "type": "web_search_call", "status": "in_progress"}
    extra = [ev("response.output_item.added", output_index=0, item=ws),
             ev("response.web_search_call.searching", item_id="ws_1", output_index=0),
             ev("response.output_item.done", output_index=0, item={**ws, "status": "completed"}),
             ev("response.output_text.annotation.added", item_id="msg_1", annotation={"type": "url_citation"}),
             ev("response.some_future_event", anything=[1, 2])]
    events = message_stream("ok")
    _, out = decode(events[:2] + extra + events[2:])
    assert [type(e) for e in out] == [Token, Usage, Done]


def test_malformed_data_is_a_warning_and_decoding_goes_on() -> None:
    d = ResponsesDecoder("r")
    [warning] = d.message(ServerSentEvent("response.output_text.delta", "{not json"), 0.0)
    assert isinstance(warning, Error) and not warning.fatal and warning.error_type == "parse"
    [shape] = d.message(ev("response.output_item.added", output_index=0, item=None), 0.1)
    assert isinstance(shape, Error) and not shape.fatal
    assert d.message(message_stream("ok")[4], 0.2) == [Token("r", 0.2, "ok")]


def test_a_stream_that_ends_before_completed_is_truncated_and_retryable() -> None:
    d = ResponsesDecoder("r")
    for e in message_stream("half")[:5]:
        d.message(e, 0.0)
    with pytest.raises(ProviderError, match="ended before response.completed") as info:
        d.finish(1.0)
    assert info.value.retryable and info.value.kind == "truncated"


def test_completed_with_nothing_answered_is_a_retryable_empty_answer() -> None:
    d = ResponsesDecoder("r")
    for e in [ev("response.created", response=RESPONSE), completed({**USAGE, "output_tokens": 0})]:
        d.message(e, 0.0)
    with pytest.raises(ProviderError, match="no answer") as info:
        d.finish(1.0)
    assert info.value.retryable and info.value.kind == "empty"


def test_a_non_streamed_response_object_is_decoded_whole() -> None:
    body = {**RESPONSE, "status": "completed", "usage": USAGE, "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "A"},
                                                        {"type": "summary_text", "text": "B"}]},
        {"id": "msg_1", "type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "whole", "annotations": []}]},
        {**FC, "status": "completed", "arguments": '{"city": "Oslo"}'}]}
    d = ResponsesDecoder("r")
    out = d.unary(json.dumps(body).encode(), 1.0)
    assert texts(out, Reasoning) == "A\n\nB" and texts(out, Token) == "whole"
    assert [e for e in out if isinstance(e, ToolCall)] == [
        ToolCall("r", 1.0, "call_2FQd", "get_weather", '{"city": "Oslo"}')]
    assert d.done and out[-1] == Done("r", 1.0, "tool_calls")


# -- the request ----------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "summary"), [("o4-mini", "auto"), ("o3", "auto"), ("o1-pro", "auto"),
                                                ("gpt-5", "auto"), ("gpt-5.1-codex", "auto"),
                                                ("codex-mini-latest", "auto"), ("gpt-4o", None),
                                                ("gpt-4.1-mini", None), ("gpt-5-chat-latest", None)])
def test_a_reasoning_summary_is_requested_for_reasoning_models_only(model: str, summary: str | None) -> None:
    body = OpenAIResponses(model, api_key="k").request_body(Prompt("q"))
    assert body.get("reasoning", {}).get("summary") == summary


def test_reasoning_options_can_be_set_or_turned_off() -> None:
    prompt = Prompt("q")
    assert "reasoning" not in OpenAIResponses("o4-mini", reasoning_summary=None).request_body(prompt)
    body = OpenAIResponses("gpt-4o", reasoning_effort="low", reasoning_summary="detailed").request_body(prompt)
    assert body["reasoning"] == {"effort": "low", "summary": "detailed"}
    params = OpenAIResponses("o3", extra_body={"reasoning": {"effort": "high"}, "store": False}).request_body(prompt)
    assert params["reasoning"] == {"effort": "high"} and params["store"] is False


def test_the_system_text_is_instructions_and_a_resume_prefill_stays_an_assistant_message() -> None:
    src = OpenAIResponses("gpt-4o", system="be brief", max_tokens=50, temperature=0.3)
    body = src.request_body(Prompt("q").continued("The answer"))
    assert body["instructions"] == "be brief" and body["stream"] is True
    assert body["input"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer"}]
    assert body["max_output_tokens"] == 50 and body["temperature"] == 0.3
    assert "max_tokens" not in body and "messages" not in body


def test_a_base_url_that_is_not_http_is_refused_before_sending() -> None:
    with pytest.raises(lg.ConfigError, match="base_url must start with http"):
        OpenAIResponses("gpt-4o", base_url="api.openai.com/v1").validate()


# -- over the wire ---------------------------------------------------------------------------

def wire(events: list[ServerSentEvent]) -> bytes:
    return b"".join(f"event: {e.event}\ndata: {e.data}\n\n".encode() for e in events)


def split(raw: bytes, size: int = 3) -> list[bytes]:
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def sent(scripted: ScriptedServer) -> tuple[bytes, dict]:
    head, _, body = scripted.requests[0].partition(b"\r\n\r\n")
    return head, json.loads(body)


def test_stream_over_loopback_in_three_byte_reads(scripted: ScriptedServer) -> None:
    reasoning = [ev("response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning"}),
                 ev("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=0,
                    delta="Thinking ", obfuscation="ab"),
                 ev("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=0,
                    delta="héré.", obfuscation="cd")]
    events = message_stream("Héllo", " 世界", obfuscation="XXXX")
    thinking = b": keep-alive\n\n" + wire(events[:2] + reasoning)
    scripted.scripts.append(Script(body=[*split(thinking), 0.05, *split(wire(events[2:]))]))
    grid = lg.run("hi", [OpenAIResponses("m", base_url=scripted.url + "/v1", api_key="sk-test-planted-0123")],
                  system="be brief", retries=0)
    name = "openai/responses/m"
    assert grid.texts == {name: "Héllo 世界"} and grid.reasoning == {name: "Thinking héré."}
    row = grid.summary.iloc[0]
    assert (row.status, row.finish_reason, row.prompt_tokens, row.output_tokens, row.reasoning_tokens,
            row.tokens_source, row.route) == ("done", "stop", 21, 40, 28, "usage", "direct-openai-responses")
    assert row.ttft_s < row.ttfo_s  # the reasoning summary came first
    head, body = sent(scripted)
    assert head.startswith(b"POST /v1/responses ") and b"Authorization: Bearer sk-test-planted-0123" in head
    assert body["instructions"] == "be brief" and body["input"] == [{"role": "user", "content": "hi"}]
    assert "reasoning" not in body
    assert "sk-test-planted-0123" not in repr(grid.events) and "sk-test-planted-0123" not in grid.summary.to_string()


def test_o4_mini_asks_for_a_reasoning_summary_and_gpt_4o_does_not(scripted: ScriptedServer) -> None:
    for _ in range(2):
        scripted.scripts.append(Script(body=[wire(message_stream("ok"))]))
    lg.run("hi", [OpenAIResponses("o4-mini", base_url=scripted.url + "/v1", api_key="k")], retries=0)
    lg.run("hi", [OpenAIResponses("gpt-4o", base_url=scripted.url + "/v1", api_key="k")], retries=0)
    reasoning_model, plain = (json.loads(r.partition(b"\r\n\r\n")[2]) for r in scripted.requests)
    assert reasoning_model["model"] == "o4-mini" and reasoning_model["reasoning"] == {"summary": "auto"}
    assert plain["model"] == "gpt-4o" and "reasoning" not in plain


def test_azure_keeps_the_api_version_query_and_sends_api_key(scripted: ScriptedServer) -> None:
    src = OpenAIResponses("gpt-5-mini", base_url="https://my-res.openai.azure.com/openai/v1?api-version=preview",
                          api_key="azure-key-0123")
    request = src.request(Prompt("hi"))
    assert request.url == "https://my-res.openai.azure.com/openai/v1/responses?api-version=preview"
    assert request.headers["api-key"] == "azure-key-0123" and "Authorization" not in request.headers
    assert src.host == "https://my-res.openai.azure.com:443"
    # The same query handling over the wire (a loopback URL is not an Azure host, so Bearer there).
    scripted.scripts.append(Script(body=[wire(message_stream("ok"))]))
    lg.run("hi", [OpenAIResponses("m", base_url=scripted.url + "/openai/v1/?api-version=2025-04-01-preview",
                                  api_key="k")], retries=0)
    head, _ = sent(scripted)
    assert head.startswith(b"POST /openai/v1/responses?api-version=2025-04-01-preview ")


def test_azure_reads_the_azure_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_API_KEY", "from-env-0123")
    request = OpenAIResponses("m", base_url="https://x.cognitiveservices.azure.com/openai/v1").request(Prompt("q"))
    assert request.headers["api-key"] == "from-env-0123"
    assert request.key_env == ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY")


def test_http_429_in_openais_error_shape_is_rate_limited_and_quotes_openai(scripted: ScriptedServer) -> None:
    error = {"error": {"message": "Rate limit reached for o4-mini on tokens per min (TPM).",
                       "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
    for _ in range(2):
        scripted.scripts.append(Script(status="429 Too Many Requests", body=[json.dumps(error).encode()],
                                       headers={"Content-Type": "application/json", "Retry-After": "0"}))
    grid = lg.run("hi", [OpenAIResponses("o4-mini", base_url=scripted.url + "/v1", api_key="k")], retries=1)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.attempts == 2 and row.error_type == "rate_limit"
    assert row.error.startswith("rate limited (HTTP 429): OpenAI tokens: Rate limit reached for o4-mini")


def test_a_failed_response_mid_stream_fails_the_pane_with_openais_words(scripted: ScriptedServer) -> None:
    failed = ev("response.failed", response={**RESPONSE, "status": "failed",
                                             "error": {"code": "invalid_prompt", "message": "Flagged."}})
    scripted.scripts.append(Script(body=split(wire([ev("response.created", response=RESPONSE), failed]))))
    grid = lg.run("hi", [OpenAIResponses("m", base_url=scripted.url + "/v1", api_key="k")], retries=2)
    row = grid.summary.iloc[0]
    assert (row.status, row.error, row.error_type, row.attempts) == (
        "failed", "OpenAI invalid_prompt: Flagged.", "stream_error", 1)


def test_missing_key_fails_the_pane_naming_openai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    grid = lg.run("hi", [OpenAIResponses("m", base_url="http://127.0.0.1:9/v1")], retries=0)
    assert grid.summary.iloc[0].error == "no API key: set OPENAI_API_KEY or pass api_key="
