"""Real recorded provider bodies (tests/fixtures/real_streams/, sources in its SOURCES.md),
replayed byte for byte over loopback through the public API on each dialect's native route,
and decoded alone at arbitrary byte boundaries. The expectations in ``expected.json`` say what a
correct consumer must produce; when a real body and the simulator disagree, the simulator is wrong.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.errors import ProviderError
from llmgrid_nb.events import Error, Event, Refusal, ToolCall
from llmgrid_nb.lines import LineDecoder
from llmgrid_nb.sources.anthropic import Anthropic, AnthropicDecoder
from llmgrid_nb.sources.gemini import Gemini, GeminiDecoder
from llmgrid_nb.sources.ollama import OllamaLineParser
from llmgrid_nb.sources.openai_responses import OpenAIResponses, ResponsesDecoder
from llmgrid_nb.sources.openai_sse import OpenAIChunkParser
from llmgrid_nb.sse import SSEDecoder

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "real_streams"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())
BODIES = sorted(EXPECTED)


def source_for(dialect: str, url: str) -> Any:
    """The native source of ``dialect`` pointed at the replaying server."""
    if dialect == "openai_chat":
        return lg.OpenAICompatible("m", url + "/v1", name="real")
    if dialect == "openai_responses":
        return OpenAIResponses("m", base_url=url + "/v1", api_key="k", name="real")
    if dialect == "anthropic":
        return Anthropic("m", base_url=url, api_key="k", name="real")
    if dialect == "gemini":
        return Gemini("m", base_url=url + "/v1beta", api_key="k", name="real")
    if dialect == "ollama":
        return lg.Ollama("m", base_url=url, name="real")
    raise AssertionError(f"unknown dialect {dialect}")


def decoder_for(dialect: str) -> Any:
    return {"openai_chat": OpenAIChunkParser, "openai_responses": ResponsesDecoder, "anthropic": AnthropicDecoder,
            "gemini": GeminiDecoder}[dialect]("real")


def body_bytes(body: str) -> bytes:
    """The body as it went over the wire. ``.chunks.txt`` recordings (the Vercel AI SDK's and
    others') kept one JSON payload a line and dropped the SSE framing: each line is framed again
    as a ``data:`` event (CRLF for Google, as it sends them), and nothing else is changed."""
    raw = (CORPUS / body).read_bytes()
    if not body.endswith(".chunks.txt"):
        return raw
    eol = b"\r\n" if EXPECTED[body]["dialect"] == "gemini" else b"\n"
    return b"".join(b"data: " + line + eol + eol for line in raw.splitlines() if line.strip())


def random_pieces(raw: bytes, rng: random.Random, most: int = 17) -> list[bytes]:
    """``raw`` cut at arbitrary byte boundaries (mid-UTF-8, mid-CRLF, mid-field included)."""
    pieces, i = [], 0
    while i < len(raw):
        n = rng.randint(1, most)
        pieces.append(raw[i:i + n])
        i += n
    return pieces


def test_the_corpus_covers_every_dialect_with_at_least_25_bodies() -> None:
    assert len(BODIES) >= 25
    assert {EXPECTED[b]["dialect"] for b in BODIES} >= {"openai_chat", "openai_responses", "anthropic", "gemini",
                                                        "ollama"}
    for body in BODIES:
        assert (CORPUS / body).is_file(), body
        assert f"`{body}`" in (CORPUS / "SOURCES.md").read_text() or body in (CORPUS / "SOURCES.md").read_text()


def check_result(body: str, grid: lg.Grid) -> None:
    want = EXPECTED[body]
    row = grid.summary.iloc[0]
    events: list[Event] = [e for e in grid.events if e.source == "real"]
    assert grid.texts["real"] == want["text"], body
    assert grid.reasoning["real"] == want["reasoning"], body
    refusal = "".join(e.text for e in events if isinstance(e, Refusal))
    assert refusal == (want["refusal"] or ""), body
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [c.name for c in calls] == [c["name"] for c in want["tool_calls"]], body
    for call, expected in zip(calls, want["tool_calls"]):
        args = expected["arguments"]
        got: Any = call.arguments
        if not isinstance(args, str):
            got = json.loads(call.arguments)
        assert got == args, body
    if want["complete"]:
        assert row.status == "done", (body, row.error)
        assert row.finish_reason == want["finish_reason"], body
    else:
        assert row.status == "failed", body
        if want["error"]:
            assert want["error"] in row.error, (body, row.error)
    dropped = [e for e in events if isinstance(e, Error) and e.error_type == "choices"]
    assert len(dropped) == (1 if want["choices"] > 1 else 0), body  # choice 0 only, and it says so
    usage = want["usage"]
    if usage:
        for ours, theirs in (("prompt_tokens", "prompt_tokens"), ("output_tokens", "output_tokens"),
                             ("reasoning_tokens", "reasoning_tokens")):
            if usage.get(theirs) is not None:
                assert row[ours] == usage[theirs], (body, ours, row[ours])
    for key, value in want["server"].items():
        assert row[f"server_{key}"] == pytest.approx(value), (body, key)


@pytest.mark.parametrize("body", BODIES)
def test_real_body_over_loopback_on_its_native_route(body: str, scripted: ScriptedServer) -> None:
    raw = body_bytes(body)
    rng = random.Random(body)
    pieces: list[bytes | float] = []
    for piece in random_pieces(raw, rng, most=64):
        pieces += [piece, 0.0002]
    ctype = "application/x-ndjson" if body.endswith(".ndjson") else "text/event-stream"
    scripted.scripts.append(Script(body=pieces, headers={"Content-Type": ctype}))
    grid = lg.run("hi", [source_for(EXPECTED[body]["dialect"], scripted.url)], retries=0, resume=False)
    check_result(body, grid)


def decode_all(dialect: str, pieces: list[bytes]) -> tuple[list[Any], str | None]:
    """Events of a body fed as ``pieces`` to the pure decoders (no network), and any failure."""
    out: list[Any] = []
    try:
        if dialect == "ollama":
            parser = OllamaLineParser("real")
            lines = LineDecoder()
            for piece in pieces:
                for line in lines.decode(piece):
                    out += parser.feed(line, 0.0)
            for line in lines.flush():
                out += parser.feed(line, 0.0)
            return out, None
        decoder = decoder_for(dialect)
        sse = SSEDecoder()
        for piece in pieces:
            for message in sse.decode(piece):
                if not decoder.done:
                    out += decoder.message(message, 0.0)
        for message in sse.flush():
            if not decoder.done:
                out += decoder.message(message, 0.0)
        out += decoder.finish(0.0)
    except ProviderError as exc:
        return out, exc.message
    return out, None


@pytest.mark.parametrize("body", BODIES)
def test_real_body_decodes_the_same_at_any_byte_boundary(body: str) -> None:
    raw = body_bytes(body)
    dialect = EXPECTED[body]["dialect"]
    whole = decode_all(dialect, [raw])
    rng = random.Random(f"split|{body}")
    for _ in range(25):
        assert decode_all(dialect, random_pieces(raw, rng)) == whole, body
    assert decode_all(dialect, [raw[i:i + 1] for i in range(len(raw))]) == whole, body


def test_each_choice_of_a_real_n3_stream_gets_its_own_pane(scripted: ScriptedServer) -> None:
    """OpenAI interleaves the choices of ``n > 1`` in one stream: asked for n=3, the grid shows
    three panes (``name``, ``name[1]``, ``name[2]``), each with its own text and metrics."""
    body = "openai_chat/openai_n3_choices.sse"
    raw = body_bytes(body)
    texts = ["", "", ""]
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                texts[choice["index"]] += choice["delta"].get("content") or ""
    assert len(set(texts)) > 1 or all(texts)
    scripted.scripts.append(Script(body=random_pieces(raw, random.Random(3), most=64)))
    grid = lg.run("hi", [lg.OpenAICompatible("m", scripted.url + "/v1", name="real")], params={"n": 3}, retries=0)
    assert grid.texts == {"real": texts[0], "real[1]": texts[1], "real[2]": texts[2]}
    assert texts[0] == EXPECTED[body]["text"]
    summary = grid.summary.set_index("source")
    assert list(summary.index) == ["real", "real[1]", "real[2]"]
    assert (summary.status == "done").all() and (summary.finish_reason == "stop").all()
    assert summary.ttft_s.notna().all() and (summary.n_chunks > 0).all()
    assert (summary.t_request_s == summary.t_request_s.iloc[0]).all()  # one request feeds them all
    assert not [e for e in grid.events if isinstance(e, Error)]
