"""Fuzzing the chunk parsers: any JSON value or text never raises anything but our own errors."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from llmgrid_nb.errors import LLMGridError
from llmgrid_nb.sources.ollama import OllamaLineParser
from llmgrid_nb.sources.openai_sse import OpenAIChunkParser

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["choices", "delta", "content", "usage", "error", "message", "tool_calls",
                         "function", "arguments", "index", "finish_reason", "done", "thinking",
                         "reasoning_content", "completion_tokens_details", "eval_count", "name", "id"]),
        children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_openai_parser_accepts_any_json_value(value: object) -> None:
    parser = OpenAIChunkParser("s")
    try:
        parser.feed(json.dumps(value), 1.0)
        parser.done = True
        parser.finish(2.0)
    except LLMGridError:
        pass


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_ollama_parser_accepts_any_json_value(value: object) -> None:
    try:
        OllamaLineParser("s").feed(json.dumps(value), 1.0)
    except LLMGridError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parsers_accept_any_text(text: str) -> None:
    for feed in (OpenAIChunkParser("s").feed, OllamaLineParser("s").feed):
        try:
            feed(text, 1.0)
        except LLMGridError:
            pass
