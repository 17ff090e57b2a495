"""The Gemini generateContent endpoints over real sockets, and the partial-argument mapping."""

from __future__ import annotations

import json
import random
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from llmgrid_nb.sim.dialects.gemini import partial_args

CONTENTS = [{"role": "user", "parts": [{"text": "How do Server-Sent Events stream tokens?"}]}]


def url(model: str, method: str = "streamGenerateContent", alt: bool = True) -> str:
    """The path a client builds: the model percent-encoded as one path segment."""
    return f"/v1beta/models/{quote(model, safe='')}:{method}" + ("?alt=sse" if alt else "")


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` event, checking Google's CRLF framing on the way."""
    assert raw.endswith(b"\r\n\r\n")
    events = raw.split(b"\r\n\r\n")[:-1]
    assert all(e.startswith(b"data: ") and b"\n" not in e for e in events)
    return [json.loads(e[6:]) for e in events]


def stream(client: httpx.Client, model: str, **body: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = client.post(url(model), json={"contents": CONTENTS, **body})
    assert response.status_code == 200, response.text
    return response, sse_chunks(response.content)


def parts(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]


def text_of(chunks: list[dict[str, Any]], thought: bool = False) -> str:
    return "".join(p["text"] for p in parts(chunks) if "text" in p and bool(p.get("thought")) == thought)


def apply_partial_args(args: dict[str, Any], fragments: list[dict[str, Any]]) -> None:
    """Merge ``partialArgs`` into ``args`` the way a client accumulates them (string values append)."""
    for fragment in fragments:
        keys = re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]", fragment["jsonPath"][1:])
        path: list[Any] = [int(i) if i else (name or quoted.replace("\\'", "'").replace("\\\\", "\\"))
                           for name, i, quoted in keys]
        target: Any = args
        for key, nxt in zip(path, path[1:]):
            if isinstance(key, int):
                while len(target) <= key:
                    target.append([] if isinstance(nxt, int) else {})
                target = target[key]
            else:
                target = target.setdefault(key, [] if isinstance(nxt, int) else {})
        last = path[-1]
        if isinstance(target, list):
            while len(target) <= last:
                target.append(None)
        if "stringValue" in fragment:
            previous = target[last] if isinstance(target, list) else target.get(last)
            target[last] = (previous if isinstance(previous, str) else "") + fragment["stringValue"]
        else:
            value = next(v for k, v in fragment.items() if k.endswith("Value"))
            target[last] = value


def test_stream_is_crlf_framed_chunks_with_running_usage(client: httpx.Client) -> None:
    response, chunks = stream(client, "sim/fast?tokens=8&ttft=0&rate=0")
    assert response.headers["content-type"] == "text/event-stream"
    assert len(chunks) == 9
    assert {c["responseId"] for c in chunks} == {chunks[0]["responseId"]}
    assert all(c["modelVersion"] == "sim/fast" for c in chunks)
    for n, chunk in enumerate(chunks[:8], start=1):
        candidate = chunk["candidates"][0]
        assert candidate["content"]["role"] == "model" and candidate["index"] == 0
        assert "finishReason" not in candidate
        assert chunk["usageMetadata"]["candidatesTokenCount"] == n
    final = chunks[-1]["candidates"][0]
    assert final["finishReason"] == "STOP" and final["content"]["parts"] == [{"text": ""}]
    usage = chunks[-1]["usageMetadata"]
    assert usage["candidatesTokenCount"] == 8
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 8
    assert "thoughtsTokenCount" not in usage


def test_send_log_matches_the_chunks_and_text_matches_generate_content(client: httpx.Client) -> None:
    model = "instant?tokens=30&seed=4"
    response, chunks = stream(client, model)
    log = client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()
    assert log["kinds"] == ["content"] * 30 + ["finish"] and len(log["send_times"]) == len(chunks)
    unary = client.post(url(model, "generateContent", alt=False), json={"contents": CONTENTS})
    assert unary.headers["content-type"].startswith("application/json")
    assert unary.text.startswith('{\n  "candidates": [')
    body = unary.json()
    assert body["candidates"][0]["content"]["parts"] == [{"text": text_of(chunks)}]
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"]["candidatesTokenCount"] == 30


def test_percent_encoded_model_keeps_its_query_and_colon(client: httpx.Client) -> None:
    model = "sim/steady:latest?tokens=3&ttft=0&rate=0&seed=2"
    raw_path = "/v1beta/models/sim%2Fsteady%3Alatest%3Ftokens%3D3%26ttft%3D0%26rate%3D0%26seed%3D2"
    assert url(model) == raw_path + ":streamGenerateContent?alt=sse"
    response, chunks = stream(client, model)
    assert len(chunks) == 4 and chunks[0]["modelVersion"] == "sim/steady:latest"
    assert client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()["model"] == model


def test_thoughts_come_first_as_thought_parts(client: httpx.Client) -> None:
    config = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    _, chunks = stream(client, "reasoning?ttft=0&rate=0&tokens=4&reasoning=3", generationConfig=config)
    flags = [p.get("thought", False) for p in parts(chunks[:-1])]
    assert flags == [True] * 3 + [False] * 4
    assert text_of(chunks, thought=True) and text_of(chunks)
    usage = chunks[-1]["usageMetadata"]
    assert usage["thoughtsTokenCount"] == 3 and usage["candidatesTokenCount"] == 4
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 7


def test_function_call_streams_as_partial_args(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}
    tools = [{"functionDeclarations": [{"name": "forecast", "parameters": schema}]}]
    _, chunks = stream(client, "tools?ttft=0&rate=0", tools=tools)
    calls = [p["functionCall"] for p in parts(chunks)]
    assert calls[0] == {"name": "forecast", "willContinue": True}
    assert "thoughtSignature" in parts(chunks)[0]
    assert all(c.get("willContinue") is True and "name" not in c for c in calls[1:-1])
    assert calls[-1] == {} and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    args: dict[str, Any] = {}
    for call in calls[1:-1]:
        apply_partial_args(args, call.get("partialArgs", []))
    unary = client.post(url("tools?ttft=0&rate=0", "generateContent"), json={"contents": CONTENTS, "tools": tools})
    whole = unary.json()["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert whole["name"] == "forecast" and args == whole["args"] and set(args) == {"city", "days"}
    fragments = [f for c in calls for f in c.get("partialArgs", [])]
    city = [f for f in fragments if f["jsonPath"] == "$.city"]
    assert all(f["willContinue"] for f in city[:-1]) and "willContinue" not in city[-1]
    assert [f for f in fragments if f["jsonPath"] == "$.days"] == [{"jsonPath": "$.days", "numberValue": args["days"]}]


@pytest.mark.parametrize("seed", range(20))
def test_partial_args_reassemble_any_fragmentation(seed: int) -> None:
    rng = random.Random(seed)
    value = {
        "name": "Ré'sumé \"quoted\" \\ back\nslash 😀",
        "odd key": [1, 2.5, True, None, {"deep": "x"}, "y"],
        "empty": {},
        "none": [],
        "n": -3,
    }
    text = json.dumps(value)
    fragments, i = [], 0
    while i < len(text):
        step = rng.randint(1, 7)
        fragments.append(text[i : i + step])
        i += step
    by_fragment, whole = partial_args(text, fragments)
    args: dict[str, Any] = json.loads(json.dumps(whole))
    for fragment in by_fragment:
        apply_partial_args(args, fragment)
    assert args == value
    # Every string continues until its last piece, which alone says it is complete.
    flags: dict[str, list[bool]] = {}
    for arg in (a for fragment in by_fragment for a in fragment if "stringValue" in a):
        flags.setdefault(arg["jsonPath"], []).append(arg.get("willContinue", False))
    assert set(flags) == {"$.name", "$['odd key'][4].deep", "$['odd key'][5]"}
    assert all(f == [True] * (len(f) - 1) + [False] for f in flags.values()), flags


def test_max_output_tokens_cuts_with_max_tokens(client: httpx.Client) -> None:
    _, chunks = stream(client, "instant?tokens=50", generationConfig={"maxOutputTokens": 7})
    assert len(chunks) == 8 and chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 7


def test_error_chunk_is_an_in_band_google_error(client: httpx.Client) -> None:
    _, chunks = stream(client, "instant?tokens=8&fault=error_chunk&after=2")
    assert len(chunks) == 3
    assert chunks[-1] == {
        "error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
    }


@pytest.mark.parametrize(
    ("fault", "status", "google_status"),
    [
        ("http_400", 400, "INVALID_ARGUMENT"),
        ("http_401", 401, "UNAUTHENTICATED"),
        ("http_403", 403, "PERMISSION_DENIED"),
        ("http_404", 404, "NOT_FOUND"),
        ("http_429", 429, "RESOURCE_EXHAUSTED"),
        ("http_500", 500, "INTERNAL"),
        ("http_503", 503, "UNAVAILABLE"),
    ],
)
def test_http_faults_use_google_statuses(client: httpx.Client, fault: str, status: int, google_status: str) -> None:
    reply = client.post(url(f"fast?fault={fault}"), json={"contents": CONTENTS})
    assert reply.status_code == status
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "status"}
    assert error["code"] == status and error["status"] == google_status and error["message"]
    if fault == "http_429":
        assert error["message"] == "Resource has been exhausted (e.g. check quota)."


def test_unknown_model_and_missing_contents_are_google_errors(client: httpx.Client) -> None:
    reply = client.post(url("gemini-9-ultra"), json={"contents": CONTENTS})
    assert reply.status_code == 404 and reply.json()["error"]["status"] == "NOT_FOUND"
    assert "models/gemini-9-ultra is not found" in reply.json()["error"]["message"]
    reply = client.post(url("fast"), json={"generationConfig": {}})
    assert reply.status_code == 400 and reply.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_without_alt_sse_the_chunks_stream_as_one_json_array(client: httpx.Client) -> None:
    _, sse = stream(client, "instant?tokens=5&seed=1")
    reply = client.post(url("instant?tokens=5&seed=1", alt=False), json={"contents": CONTENTS})
    assert reply.headers["content-type"].startswith("application/json")
    array = reply.json()
    assert len(array) == 6 and text_of(array) == text_of(sse)
    assert array[-1]["candidates"][0]["finishReason"] == "STOP"


def test_multi_turn_contents_answer_the_last_user_turn(client: httpx.Client) -> None:
    contents = [
        {"role": "user", "parts": [{"text": "Tell me about giraffes"}]},
        {"role": "model", "parts": [{"text": "Giraffes are tall."}]},
        {"role": "user", "parts": [{"text": "How should I cache database queries?"}]},
    ]
    system = {"parts": [{"text": "You are terse."}]}
    response, chunks = stream(client, "instant?tokens=40&seed=3", contents=contents, systemInstruction=system)
    assert "cach" in text_of(chunks).lower() or "database" in text_of(chunks).lower()
    assert client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()["user_turns"] == 2


def test_models_list_in_google_shape(client: httpx.Client) -> None:
    models = client.get("/v1beta/models").json()["models"]
    assert {"models/fast", "models/tools"} <= {m["name"] for m in models}
    assert all("streamGenerateContent" in m["supportedGenerationMethods"] for m in models)
