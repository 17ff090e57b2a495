"""The native Gemini path: the pure decoder on Gemini's payloads, and the wire over loopback.

The streamed-function-call payloads follow bodies recorded from Vertex AI with
``streamFunctionCallArguments`` (Gemini 3): a part with ``name`` and ``willContinue``, then
``partialArgs`` fragments by JSON path, ended by an empty ``functionCall`` or by a last
fragment without ``willContinue``.
"""

from __future__ import annotations

import json

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.errors import ConfigError, ProviderError
from llmgrid_nb.events import Done, Error, Reasoning, Token, ToolCall, Usage
from llmgrid_nb.sources.base import Prompt
from llmgrid_nb.sources.gemini import Gemini, GeminiDecoder, json_path_segments
from llmgrid_nb.sse import ServerSentEvent


def response(*parts: dict, finish: str | None = None, usage: dict | None = None, **extra: object) -> str:
    candidate: dict = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    obj: dict = {"candidates": [candidate], "modelVersion": "gemini-test", **extra}
    if usage is not None:
        obj["usageMetadata"] = usage
    return json.dumps(obj)


def call(**fc: object) -> dict:
    return {"functionCall": fc}


def feed_all(decoder: GeminiDecoder, *datas: str) -> list:
    out: list = []
    for i, data in enumerate(datas):
        out += decoder.message(ServerSentEvent("message", data), float(i))
    return out


def sse(*datas: str, eol: bytes = b"\r\n") -> bytes:
    return b"".join(b"data: " + d.encode() + eol + eol for d in datas)


USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 23, "totalTokenCount": 334, "thoughtsTokenCount": 302}


# -- the pure decoder ------------------------------------------------------------------------

def test_text_parts_are_tokens_and_thought_parts_are_reasoning() -> None:
    d = GeminiDecoder("s")
    events = feed_all(d, response({"text": "weighing it", "thought": True}),
                      response({"text": "Hél"}, {"text": "lo"}),
                      response({"text": "", "thoughtSignature": "EpAICo0IAb4"}, finish="STOP"))
    assert events == [Reasoning("s", 0.0, "weighing it"), Token("s", 1.0, "Hél"), Token("s", 1.0, "lo")]
    assert d.finish(3.0) == [Done("s", 3.0, "stop")]


def test_whole_function_call_is_one_tool_call_and_the_finish_reads_tool_calls() -> None:
    d = GeminiDecoder("s")
    events = feed_all(d, response(call(name="get_weather", args={"city": "São Paulo", "days": 2}, id="fc-7"),
                                  call(name="get_time", args={"tz": "UTC"}), finish="STOP"))
    assert events == [ToolCall("s", 0.0, "fc-7", "get_weather", '{"city": "São Paulo", "days": 2}'),
                      ToolCall("s", 0.0, "call_2", "get_time", '{"tz": "UTC"}')]
    assert d.finish(1.0) == [Done("s", 1.0, "tool_calls")]


def test_function_call_without_args_has_an_empty_arguments_object() -> None:
    d = GeminiDecoder("s")
    [tool] = feed_all(d, response(call(name="list_files"), finish="STOP"))
    assert tool == ToolCall("s", 0.0, "call_1", "list_files", "{}")


def test_the_same_call_sent_twice_with_its_id_is_one_tool_call() -> None:
    d = GeminiDecoder("s")
    events = feed_all(d, response(call(name="f", args={"a": 1}, id="x")),
                      response({**call(name="f", args={"a": 1}, id="x"), "thoughtSignature": "sig"}, finish="STOP"))
    assert [e.id for e in events if isinstance(e, ToolCall)] == ["x"]


# Two streamed calls as Vertex sends them: start, fragments by path, an empty functionCall as end.
STREAMED = [
    response({**call(name="getWeather", willContinue=True), "thoughtSignature": "CiMBjz1r"}),
    response(call(partialArgs=[{"jsonPath": "$.location", "stringValue": "Bos", "willContinue": True}],
                  willContinue=True)),
    response(call(partialArgs=[{"jsonPath": "$.location", "stringValue": "ton, MA", "willContinue": True},
                               {"jsonPath": "$.brightness", "numberValue": 50}], willContinue=True)),
    response(call(partialArgs=[{"jsonPath": "$.location", "stringValue": ""}], willContinue=True)),
    response(call()),
    response(call(name="getWeather", willContinue=True)),
    response(call(partialArgs=[{"jsonPath": "$.location", "stringValue": "San Francisco", "willContinue": True}],
                  willContinue=True)),
    response(call(partialArgs=[{"jsonPath": "$.metric", "boolValue": True},
                               {"jsonPath": "$.note", "nullValue": "NULL_VALUE"}], willContinue=True)),
    response(call(), finish="STOP", usage={"promptTokenCount": 26, "candidatesTokenCount": 23,
                                           "thoughtsTokenCount": 132}),
]


def test_streamed_partial_args_are_assembled_and_each_call_is_emitted_once_complete() -> None:
    d = GeminiDecoder("s")
    per_message = [d.message(ServerSentEvent("message", data), float(i)) for i, data in enumerate(STREAMED)]
    assert [i for i, evs in enumerate(per_message) if evs] == [4, 8]  # nothing before a call ends
    first, second = per_message[4][0], per_message[8][0]
    assert (first.name, json.loads(first.arguments)) == ("getWeather", {"location": "Boston, MA", "brightness": 50})
    assert first.arguments == '{"location": "Boston, MA", "brightness": 50}'  # the order they came in
    assert json.loads(second.arguments) == {"location": "San Francisco", "metric": True, "note": None}
    assert (first.id, second.id) == ("call_1", "call_2")
    assert d.finish(9.0) == [Usage("s", 9.0, 26, 155, 132), Done("s", 9.0, "tool_calls")]


def test_streamed_array_arguments_end_with_a_fragment_without_will_continue() -> None:
    # Vercel AI SDK #14358: for array arguments the last fragment is the end, with no {} after it.
    d = GeminiDecoder("s")
    events = feed_all(
        d,
        response(call(name="writeItems", willContinue=True)),
        response(call(partialArgs=[{"jsonPath": "$.operations[0].action", "stringValue": "add",
                                    "willContinue": True}], willContinue=True)),
        response(call(partialArgs=[{"jsonPath": "$.operations[0].action", "stringValue": ""}], willContinue=True)),
        response(call(partialArgs=[{"jsonPath": "$.operations[0].price", "numberValue": 0.5}], willContinue=True)),
        response(call(willContinue=True)),
        response(call(partialArgs=[{"jsonPath": "$.operations[1]['item id']", "stringValue": "banana_001"}],
                      willContinue=True)),
        response(call(partialArgs=[{"jsonPath": "$.operations[1].price", "numberValue": 0.3}])),
        response({"text": ""}, finish="STOP"),
    )
    [tool] = events
    assert json.loads(tool.arguments) == {"operations": [{"action": "add", "price": 0.5},
                                                         {"item id": "banana_001", "price": 0.3}]}
    assert tool.t_s == 6.0


def test_a_streamed_call_left_open_is_completed_by_the_finish_reason_or_the_end() -> None:
    start = response(call(name="f", willContinue=True))
    fragment = response(call(partialArgs=[{"jsonPath": "$.q", "stringValue": "x", "willContinue": True}],
                             willContinue=True))
    d = GeminiDecoder("s")
    [tool] = feed_all(d, start, fragment, response({"text": ""}, finish="STOP"))
    assert json.loads(tool.arguments) == {"q": "x"} and d.finish_reason == "tool_calls"
    d = GeminiDecoder("s")
    assert feed_all(d, start, fragment) == []
    with pytest.raises(ProviderError, match="finishReason"):
        d.finish(2.0)  # a call cut off with the stream is no answer, even though it was assembled


@pytest.mark.parametrize(("path", "segments"), [
    ("$.location", ("location",)),
    ("$.recipe.ingredients[0].amount", ("recipe", "ingredients", 0, "amount")),
    ("$['a b'].c", ("a b", "c")),
    ("$[\"it\\\"s\"]", ('it"s',)),
    ("$['it\\'s']", ("it's",)),
    ("city", ("city",)),
    ("$.a[x]", None),
    ("$", None),
    ("$.a[99999999999]", None),
])
def test_json_paths_of_partial_args_are_split_into_keys_and_indexes(path: str, segments: tuple | None) -> None:
    assert json_path_segments(path) == segments


def test_usage_is_the_last_counted_one_and_output_includes_thoughts() -> None:
    d = GeminiDecoder("s")
    feed_all(d, response({"text": "a"}, usage={"promptTokenCount": 9, "totalTokenCount": 9}),
             response({"text": "b"}, usage={"trafficType": "ON_DEMAND"}),  # Vertex: no figures yet
             response({"text": "c"}, finish="STOP", usage=USAGE),
             json.dumps({"usageMetadata": {"trafficType": "ON_DEMAND"}}))
    [usage, done] = d.finish(4.0)
    assert usage == Usage("s", 4.0, 9, 23 + 302, 302) and done.finish_reason == "stop"


def test_usage_without_thoughts_has_no_reasoning_tokens() -> None:
    d = GeminiDecoder("s")
    feed_all(d, response({"text": "a"}, finish="STOP", usage={"promptTokenCount": 3, "candidatesTokenCount": 1}))
    assert d.finish(1.0)[0] == Usage("s", 1.0, 3, 1, None)


@pytest.mark.parametrize(("reason", "ours"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"), ("MALFORMED_FUNCTION_CALL", "malformed_function_call"),
    ("OTHER", "other"),
])
def test_finish_reasons_are_mapped_onto_our_vocabulary(reason: str, ours: str) -> None:
    d = GeminiDecoder("s")
    feed_all(d, response({"text": "x"}, finish=reason))
    assert d.finish(1.0)[-1] == Done("s", 1.0, ours)


def test_a_blocked_prompt_fails_without_retry_and_says_why() -> None:
    d = GeminiDecoder("s")
    blocked = json.dumps({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                          "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}})
    with pytest.raises(ProviderError) as info:
        feed_all(d, blocked)
    assert info.value.message == "Gemini blocked the prompt: PROHIBITED_CONTENT"
    assert not info.value.retryable


@pytest.mark.parametrize(("code", "status", "retryable"), [
    (429, "RESOURCE_EXHAUSTED", True), (503, "UNAVAILABLE", True), (500, "INTERNAL", True),
    (400, "INVALID_ARGUMENT", False),
])
def test_an_in_band_error_quotes_google_and_is_retryable_when_transient(code: int, status: str,
                                                                       retryable: bool) -> None:
    d = GeminiDecoder("s")
    feed_all(d, response({"text": "partial"}))
    err = json.dumps({"error": {"code": code, "message": "Something went wrong", "status": status}})
    with pytest.raises(ProviderError) as info:
        feed_all(d, err)
    assert info.value.message == f"Gemini {status}: Something went wrong"
    assert info.value.retryable is retryable and info.value.kind == "stream_error"


def test_an_in_band_error_keeps_googles_retry_delay() -> None:
    err = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}]}}
    with pytest.raises(ProviderError) as info:
        feed_all(GeminiDecoder("s"), json.dumps(err))
    assert info.value.retry_after == 34.4


def test_malformed_json_is_a_warning_and_decoding_goes_on() -> None:
    d = GeminiDecoder("s")
    warning, token = feed_all(d, "{not json", response({"text": "ok"}))
    assert isinstance(warning, Error) and not warning.fatal and warning.error_type == "parse"
    assert token == Token("s", 1.0, "ok")


def test_a_stream_that_ends_before_the_finish_reason_is_truncated() -> None:
    d = GeminiDecoder("s")
    feed_all(d, response({"text": "half"}))
    with pytest.raises(ProviderError) as info:
        d.finish(1.0)
    assert info.value.message == "the stream ended before Gemini's finishReason"
    assert info.value.retryable and info.value.kind == "truncated"
    assert d.done is False


def test_an_empty_answer_that_says_stop_is_a_retryable_failure() -> None:
    d = GeminiDecoder("s")
    feed_all(d, response({"text": ""}, finish="STOP", usage={"promptTokenCount": 3}))
    with pytest.raises(ProviderError) as info:
        d.finish(1.0)
    assert info.value.retryable and info.value.kind == "empty" and "1 message(s)" in info.value.message


def test_an_empty_answer_cut_by_max_tokens_stands() -> None:
    d = GeminiDecoder("s")
    feed_all(d, response(finish="MAX_TOKENS"))
    assert d.finish(1.0) == [Done("s", 1.0, "length")]


def test_a_whole_json_array_answer_is_decoded() -> None:
    body = json.dumps([json.loads(response({"text": "who"})),
                       json.loads(response({"text": "le"}, finish="STOP", usage=USAGE))]).encode()
    events = GeminiDecoder("s").unary(body, 1.0)
    assert [type(e) for e in events] == [Token, Token, Usage, Done]
    assert "".join(e.text for e in events if isinstance(e, Token)) == "whole"


def test_other_candidates_are_dropped_with_one_warning() -> None:
    d = GeminiDecoder("s")
    two = json.dumps({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0},
                                     {"content": {"parts": [{"text": "b"}]}, "index": 1}]})
    events = feed_all(d, two, two)
    assert [e.text for e in events if isinstance(e, Token)] == ["a", "a"]
    assert sum(isinstance(e, Error) for e in events) == 1


# -- the request -----------------------------------------------------------------------------

def test_request_body_maps_roles_system_and_generation_config() -> None:
    src = Gemini("m", temperature=0.2, max_tokens=9, thinking_budget=512,
                 extra_body={"generationConfig": {"topP": 0.9, "thinkingConfig": {"thinkingLevel": "low"}},
                             "safetySettings": []})
    body = src.request_body(Prompt("hi", system="be brief").continued("Once upon"))
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]},
                     {"role": "model", "parts": [{"text": "Once upon"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 9, "topP": 0.9,
                             "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512,
                                                "thinkingLevel": "low"}},
        "safetySettings": [],
    }


def test_thoughts_are_not_asked_for_when_turned_off_or_thinking_is_off() -> None:
    assert "generationConfig" not in Gemini("m", include_thoughts=False).request_body(Prompt("hi"))
    config = Gemini("m", thinking_budget=0).request_body(Prompt("hi"))["generationConfig"]
    assert config == {"thinkingConfig": {"thinkingBudget": 0}}


def test_names_route_host_and_validation() -> None:
    src = Gemini("gemini-2.5-flash")
    assert (src.name, src.route, src.host) == ("gemini/gemini-2.5-flash", "direct-gemini",
                                               "https://generativelanguage.googleapis.com:443")
    src.validate()
    with pytest.raises(ConfigError, match="base_url must start with http"):
        Gemini("m", base_url="generativelanguage.googleapis.com").validate()
    with pytest.raises(ConfigError, match="thinking_budget"):
        Gemini("m", thinking_budget=1.5).validate()  # type: ignore[arg-type]


# -- over the wire ---------------------------------------------------------------------------

def source(server: ScriptedServer, model: str = "m", **kw: object) -> Gemini:
    return Gemini(model, base_url=server.url + "/v1beta", api_key="k", **kw)  # type: ignore[arg-type]


STREAM = [response({"text": "Let me think.", "thought": True}), response({"text": "Hél"}),
          response({"text": "lo 世界"}, usage={"promptTokenCount": 4, "totalTokenCount": 4}),
          response({"text": "", "thoughtSignature": "sig"}, finish="STOP",
                   usage={"promptTokenCount": 4, "candidatesTokenCount": 3, "thoughtsTokenCount": 5})]


def request_parts(raw: bytes) -> tuple[str, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return line, headers, json.loads(body)


def test_crlf_framing_split_into_3_byte_reads(scripted: ScriptedServer) -> None:
    raw = sse(*STREAM, eol=b"\r\n")
    scripted.scripts.append(Script(body=[raw[i:i + 3] for i in range(0, len(raw), 3)]))
    grid = lg.run("hi", [source(scripted)], retries=0)
    assert grid.texts == {"gemini/m": "Héllo 世界"}
    assert grid.reasoning == {"gemini/m": "Let me think."}
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.finish_reason == "stop"
    assert (row.prompt_tokens, row.output_tokens, row.reasoning_tokens) == (4, 8, 5)
    assert row.tokens_source == "usage"


def test_request_url_headers_and_body(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(*STREAM)]))
    lg.run("hi", [source(scripted, "steady?tokens=50", temperature=0.3)], system="be brief", retries=0)
    line, headers, body = request_parts(scripted.requests[0])
    assert line == "POST /v1beta/models/steady%3Ftokens%3D50:streamGenerateContent?alt=sse HTTP/1.1"
    assert headers["x-goog-api-key"] == "k" and "authorization" not in headers
    assert headers["accept"] == "text/event-stream"
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["generationConfig"] == {"temperature": 0.3, "thinkingConfig": {"includeThoughts": True}}


def test_streamed_tool_call_over_the_wire(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[sse(*STREAMED)]))
    grid = lg.run("hi", [source(scripted)], retries=0)
    calls = [e for e in grid.events if isinstance(e, ToolCall)]
    assert [json.loads(c.arguments)["location"] for c in calls] == ["Boston, MA", "San Francisco"]
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.finish_reason == "tool_calls" and row.output_tokens == 155


GOOGLE_429 = json.dumps({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                   "status": "RESOURCE_EXHAUSTED"}}).encode()


def test_429_in_googles_shape_is_retried_and_quoted(scripted: ScriptedServer) -> None:
    for _ in range(2):
        scripted.scripts.append(Script(status="429 Too Many Requests", body=[GOOGLE_429],
                                       headers={"Content-Type": "application/json", "Retry-After": "0"}))
    grid = lg.run("hi", [source(scripted)], retries=1)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.attempts == 2 and len(scripted.requests) == 2
    assert row.error.startswith("rate limited (HTTP 429): Gemini RESOURCE_EXHAUSTED: Resource has been exhausted")


def test_429_then_an_answer_succeeds_on_the_retry(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(status="429 Too Many Requests", body=[GOOGLE_429],
                                   headers={"Content-Type": "application/json", "Retry-After": "0"}))
    scripted.scripts.append(Script(body=[sse(*STREAM)]))
    grid = lg.run("hi", [source(scripted)], retries=1)
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.attempts == 2 and grid.texts["gemini/m"] == "Héllo 世界"


def test_missing_key_fails_the_pane_naming_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    grid = lg.run("hi", [Gemini("m", base_url="http://127.0.0.1:9/v1beta")], retries=0)
    assert grid.summary.iloc[0].error == "no API key: set GEMINI_API_KEY or GOOGLE_API_KEY or pass api_key="


def test_google_api_key_is_read_when_gemini_api_key_is_unset(scripted: ScriptedServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-env-key")
    scripted.scripts.append(Script(body=[sse(*STREAM)]))
    lg.run("hi", [Gemini("m", base_url=scripted.url + "/v1beta")], retries=0)
    assert request_parts(scripted.requests[0])[1]["x-goog-api-key"] == "g-env-key"


def test_the_key_never_reaches_the_url_events_or_summary(scripted: ScriptedServer) -> None:
    key = "AIzaSy-planted-key-0123456789"
    echo = json.dumps({"error": {"code": 400, "message": f"API key not valid: {key}",
                                 "status": "INVALID_ARGUMENT"}}).encode()
    scripted.scripts.append(Script(body=[sse(*STREAM)]))
    scripted.scripts.append(Script(status="400 Bad Request", body=[echo],
                                   headers={"Content-Type": "application/json"}))
    for _ in range(2):
        grid = lg.run("hi", [Gemini("m", base_url=scripted.url + "/v1beta", api_key=key)], retries=0)
        assert key not in repr(grid.events) and key not in grid.summary.to_string()
    assert "Gemini INVALID_ARGUMENT: API key not valid: ***" in grid.summary.iloc[0].error
    for raw in scripted.requests:
        line, headers, _ = request_parts(raw)
        assert key not in line and headers["x-goog-api-key"] == key


def test_http_429_waits_as_long_as_googles_retry_info_says(scripted: ScriptedServer) -> None:
    """Google puts the delay in the body (google.rpc.RetryInfo), not in a Retry-After header."""
    error = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                       "status": "RESOURCE_EXHAUSTED",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.3s"}]}}
    scripted.scripts.append(Script(status="429 Too Many Requests", headers={"Content-Type": "application/json"},
                                   body=[json.dumps(error).encode()]))
    grid = lg.run("hi", [Gemini("m", base_url=scripted.url + "/v1beta", api_key="k", name="g")], retries=0)
    row = grid.summary.iloc[0]
    assert row.error == ("rate limited (HTTP 429): Gemini RESOURCE_EXHAUSTED: Resource has been exhausted "
                         "(e.g. check quota).; retry after 0.3 s")


def test_a_bad_key_answered_with_http_400_reads_as_an_authentication_failure(scripted: ScriptedServer) -> None:
    error = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                       "status": "INVALID_ARGUMENT",
                       "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                    "domain": "googleapis.com"}]}}
    scripted.scripts.append(Script(status="400 Bad Request", headers={"Content-Type": "application/json"},
                                   body=[json.dumps(error).encode()]))
    grid = lg.run("hi", [Gemini("m", base_url=scripted.url + "/v1beta", api_key="bad-key", name="g")], retries=2)
    row = grid.summary.iloc[0]
    assert row.error.startswith("authentication failed (HTTP 400): Gemini INVALID_ARGUMENT: API key not valid.")
    assert "; check " in row.error and row.attempts == 1 and "bad-key" not in row.error
