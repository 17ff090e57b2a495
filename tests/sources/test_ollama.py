"""Ollama's NDJSON path: line parsing, server timings, errors, over real loopback sockets."""

from __future__ import annotations

import json

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.errors import ProviderError
from llmgrid_nb.events import Done, Reasoning, Token, ToolCall, Usage
from llmgrid_nb.sources.ollama import OllamaLineParser

FINAL = {"model": "m", "done": True, "done_reason": "stop", "message": {"role": "assistant", "content": ""},
         "total_duration": 2_000_000_000, "load_duration": 100_000_000, "prompt_eval_count": 12,
         "prompt_eval_duration": 50_000_000, "eval_count": 40, "eval_duration": 1_000_000_000}


def line(**message: object) -> str:
    return json.dumps({"model": "m", "message": {"role": "assistant", **message}, "done": False})


def test_content_thinking_and_tool_calls_become_events() -> None:
    p = OllamaLineParser("o")
    assert p.feed(line(content="", thinking="hmm"), 1.0) == [Reasoning("o", 1.0, "hmm")]
    assert p.feed(line(content="Hi"), 1.1) == [Token("o", 1.1, "Hi")]
    [call] = p.feed(line(content="", tool_calls=[{"function": {"name": "f", "arguments": {"x": 1}}}]), 1.2)
    assert isinstance(call, ToolCall) and call.name == "f" and json.loads(call.arguments) == {"x": 1}


def test_final_line_keeps_ollamas_timings_in_seconds() -> None:
    p = OllamaLineParser("o")
    usage, done = p.feed(json.dumps(FINAL), 2.0)
    assert done == Done("o", 2.0, "stop")
    assert isinstance(usage, Usage) and usage.output_tokens == 40 and usage.prompt_tokens == 12
    assert usage.server["eval_duration_s"] == pytest.approx(1.0)
    assert usage.server["total_duration_s"] == pytest.approx(2.0)
    assert usage.server["eval_count"] == 40


def test_error_line_raises() -> None:
    with pytest.raises(ProviderError, match="model exploded"):
        OllamaLineParser("o").feed('{"error": "model exploded"}', 1.0)


def test_ndjson_over_the_wire_with_split_reads(scripted: ScriptedServer) -> None:
    raw = ("\n".join([line(content="Bon"), line(content="jour 🙂"), json.dumps(FINAL)]) + "\n").encode()
    scripted.scripts.append(Script(body=[raw[i:i + 5] for i in range(0, len(raw), 5)],
                                   headers={"Content-Type": "application/x-ndjson"}))
    grid = lg.run("hi", [lg.Ollama("m", base_url=scripted.url)], retries=0)
    assert grid.texts == {"ollama/m": "Bonjour 🙂"}
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.output_tokens == 40 and row.tokens_source == "usage"
    assert row.server_decode_tokens_per_s == pytest.approx(40.0)
    body = json.loads(scripted.requests[0].split(b"\r\n\r\n", 1)[1])
    assert body["stream"] is True and body["messages"][-1] == {"role": "user", "content": "hi"}


def test_ollama_404_shows_ollamas_message(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(status="404 Not Found", headers={"Content-Type": "application/json"},
                                   body=[b'{"error":"model \\"nope\\" not found, try pulling it first"}']))
    grid = lg.run("hi", [lg.Ollama("nope", base_url=scripted.url)], retries=0)
    assert grid.summary.iloc[0].error == 'not found (HTTP 404): model "nope" not found, try pulling it first'


def test_options_go_under_ollamas_options_key(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=[json.dumps(FINAL).encode() + b"\n"]))
    lg.run("hi", [lg.Ollama("m", base_url=scripted.url)], temperature=0.3, max_tokens=5, retries=0)
    body = json.loads(scripted.requests[0].split(b"\r\n\r\n", 1)[1])
    assert body["options"] == {"temperature": 0.3, "num_predict": 5}
