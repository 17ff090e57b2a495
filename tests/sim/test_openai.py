"""The OpenAI Chat Completions endpoint over real sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmgrid_nb.sim import parse_model, schedule

PROMPT = [{"role": "user", "content": "How do Server-Sent Events stream tokens?"}]


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` payload of each event, from decoded lines (enough for OpenAI's format)."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def stream_events(client: httpx.Client, model: str, **extra: Any) -> tuple[httpx.Response, list[str]]:
    body = {"model": model, "messages": PROMPT, "stream": True, **extra}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        events = list(sse_data(response.iter_lines()))
    return response, events


def chunks(events: list[str]) -> list[dict[str, Any]]:
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_stream_has_openai_chunk_format(client: httpx.Client) -> None:
    response, events = stream_events(client, "sim/fast?tokens=12", stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-sim-request-id"]
    parsed = chunks(events)
    for chunk in parsed:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"].startswith("chatcmpl-") and chunk["id"] == parsed[0]["id"]
        assert isinstance(chunk["created"], int) and chunk["model"] == "sim/fast"
    assert parsed[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
    ]
    content = parsed[1:13]
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in content)
    assert parsed[13]["choices"][0]["delta"] == {} and parsed[13]["choices"][0]["finish_reason"] == "stop"
    usage = parsed[14]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 12
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + 12
    assert usage["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}
    assert len(parsed) == 15


def test_stream_without_usage_option_has_no_usage_chunk(client: httpx.Client) -> None:
    _, events = stream_events(client, "fast?tokens=3")
    parsed = chunks(events)
    assert len(parsed) == 5
    assert "usage" not in parsed[-1]


def test_joined_stream_equals_non_stream_text(client: httpx.Client) -> None:
    _, events = stream_events(client, "instant?tokens=80&seed=4")
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks(events) if c["choices"])
    reply = client.post("/v1/chat/completions", json={"model": "instant?tokens=80&seed=4", "messages": PROMPT})
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == text
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 80
    assert "Server" in text


def test_same_seed_gives_same_text_and_other_seed_differs(client: httpx.Client) -> None:
    def text(seed: int) -> str:
        body = {"model": "instant?tokens=60", "messages": PROMPT, "seed": seed}
        return client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]

    assert text(11) == text(11)
    assert text(11) != text(12)


def test_max_tokens_cuts_with_length(client: httpx.Client) -> None:
    _, events = stream_events(client, "instant?tokens=50", max_tokens=7)
    parsed = chunks(events)
    assert sum("content" in c["choices"][0]["delta"] for c in parsed[1:]) == 7
    assert parsed[-1]["choices"][0]["finish_reason"] == "length"


def test_reasoning_profile_streams_reasoning_first(client: httpx.Client) -> None:
    model = "reasoning?ttft=0&rate=0&tokens=10&reasoning=6"
    _, events = stream_events(client, model, stream_options={"include_usage": True})
    parsed = chunks(events)
    deltas = [c["choices"][0]["delta"] for c in parsed[1:-2]]
    kinds = ["reasoning_content" if "reasoning_content" in d else "content" for d in deltas]
    assert kinds == ["reasoning_content"] * 6 + ["content"] * 10
    assert parsed[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 6


def test_tools_profile_streams_tool_call_fragments(client: httpx.Client) -> None:
    _, events = stream_events(client, "tools?ttft=0&rate=0")
    parsed = chunks(events)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in parsed if c["choices"][0]["delta"].get("tool_calls")]
    head = calls[0]
    assert head["index"] == 0 and head["id"].startswith("call_") and head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    assert len(calls) > 3
    arguments = json.loads("".join(c["function"]["arguments"] for c in calls))
    assert set(arguments) == {"location", "unit"}
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tools_non_stream_message_has_tool_calls(client: httpx.Client) -> None:
    properties = {"city": {"type": "string"}, "days": {"type": "integer"}}
    function = {"name": "lookup", "parameters": {"type": "object", "properties": properties}}
    tools = [{"type": "function", "function": function}]
    request = {"model": "tools?ttft=0&rate=0", "messages": PROMPT, "tools": tools}
    body = client.post("/v1/chat/completions", json=request).json()
    message = body["choices"][0]["message"]
    assert message["content"] is None
    call = message["tool_calls"][0]
    assert call["function"]["name"] == "lookup"
    assert set(json.loads(call["function"]["arguments"])) == {"city", "days"}
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_unknown_model_is_404_in_openai_error_format(client: httpx.Client) -> None:
    reply = client.post("/v1/chat/completions", json={"model": "gpt-99", "messages": PROMPT})
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["message"].startswith("The model 'gpt-99' does not exist")
    assert error["type"] == "invalid_request_error" and error["param"] is None and error["code"] == "model_not_found"


def test_invalid_json_and_missing_messages_are_400(client: httpx.Client) -> None:
    reply = client.post("/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error"]["type"] == "invalid_request_error"
    reply = client.post("/v1/chat/completions", json={"model": "fast"})
    assert reply.status_code == 400


def test_models_lists_profiles(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {"fast", "steady", "slow", "bursty", "reasoning", "tools", "flaky"} <= ids
    assert all(m["object"] == "model" and m["owned_by"] == "llmgrid-sim" for m in body["data"])


def test_send_log_matches_chunks_and_schedule(client: httpx.Client) -> None:
    model = "steady?tokens=30&ttft=0.1&rate=100&seed=5"
    response, events = stream_events(client, model)
    log = client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()
    assert log["model"] == model and log["profile"] == "steady" and log["fault"] is None
    assert log["kinds"] == ["role"] + ["content"] * 30 + ["finish", "done"]
    assert len(log["send_times"]) == len(events)
    times = log["send_times"]
    assert all(a <= b for a, b in zip(times, times[1:]))
    offsets = schedule(parse_model(model).profile, 30, 5)
    actual = [t - log["t_request"] for t in times[1:31]]
    late = sorted(a - o for a, o in zip(actual, offsets))
    # Every chunk on time within a busy machine's scheduling noise, and typically within 5 ms
    # (sleeps that accumulated their errors would push the median up chunk after chunk).
    assert late[0] >= -0.001 and late[-1] <= 0.05 and late[len(late) // 2] <= 0.005, list(zip(actual, offsets))


def test_send_times_are_comparable_with_client_monotonic_clock(client: httpx.Client) -> None:
    before = time.monotonic()
    response, _ = stream_events(client, "fast?tokens=3")
    after = time.monotonic()
    log = client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()
    assert before <= log["t_request"] <= log["send_times"][-1] <= after


def test_unknown_log_id_is_404(client: httpx.Client) -> None:
    assert client.get("/_sim/log/nope").status_code == 404
    assert client.get("/_sim/health").json() == {"ok": True}


@pytest.mark.parametrize(
    "xss_field", ["<img src=x onerror=", "<script>window.__llmgrid_xss=1</script>", "](javascript:alert(1))"]
)
def test_xss_option_puts_payloads_in_the_text(client: httpx.Client, xss_field: str) -> None:
    body = client.post("/v1/chat/completions", json={"model": "instant?tokens=5&xss=1", "messages": PROMPT}).json()
    assert xss_field in body["choices"][0]["message"]["content"]


def test_n_choices_stream_as_openai_sends_them(client: httpx.Client) -> None:
    """As the real ``openai_n3_choices.sse``: one choice per chunk, their chunks interleaved, each
    choice opening with its role and ending with its own finish, then one usage chunk whose
    completion tokens are every choice's, then ``[DONE]``."""
    response, events = stream_events(client, "sim/fast?tokens=12", n=3, stream_options={"include_usage": True})
    assert response.status_code == 200
    body = chunks(events)
    per_choice = [c for c in body if c["choices"]]
    assert all(len(c["choices"]) == 1 for c in per_choice)
    indexes = [c["choices"][0]["index"] for c in per_choice]
    assert sorted(set(indexes)) == [0, 1, 2] and indexes != sorted(indexes), "interleaved, not one after another"
    texts = {i: "" for i in range(3)}
    for c in per_choice:
        choice = c["choices"][0]
        texts[choice["index"]] += choice["delta"].get("content") or ""
    assert len(set(texts.values())) == 3, "three different answers"
    for i in range(3):
        mine = [c["choices"][0] for c in per_choice if c["choices"][0]["index"] == i]
        assert mine[0]["delta"]["role"] == "assistant" and mine[-1]["finish_reason"] == "stop"
        assert all(m["finish_reason"] is None for m in mine[:-1])
    usage = body[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 36
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + 36


@pytest.mark.parametrize(("n", "stream"), [(0, True), ("2", True), (True, True), (2, False)])
def test_a_bad_n_or_several_choices_unstreamed_is_a_400_naming_n(client: httpx.Client, n: object,
                                                                 stream: bool) -> None:
    response = client.post("/v1/chat/completions", json={"model": "sim/fast", "messages": PROMPT, "n": n,
                                                         "stream": stream})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "n"
