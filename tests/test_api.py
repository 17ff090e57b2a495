"""The public API: its names, and bad input refused before any request is sent."""

from __future__ import annotations

import pytest

import llmgrid_nb as lg
from llmgrid_nb.errors import ConfigError


def test_all_is_sorted_and_complete() -> None:
    assert lg.__all__ == sorted(lg.__all__)
    for name in lg.__all__:
        assert hasattr(lg, name)


def test_import_does_not_import_litellm_or_pandas() -> None:
    import subprocess
    import sys

    code = "import sys, llmgrid_nb; print('litellm' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prompt": ""}, "the prompt is empty"),
    ({"prompt": "   "}, "the prompt is empty"),
    ({"prompt": "x" * (1 << 20)}, "more than the limit"),
    ({"models": []}, "no models given"),
    ({"timeout": -1}, "timeout must be a positive number"),
    ({"stall_timeout": 0}, "stall_timeout must be a positive number"),
    ({"retries": -1}, "retries must be a whole number"),
    ({"max_concurrency": 0}, "max_concurrency must be"),
    ({"temperature": 7}, "temperature must be between 0 and 2"),
    ({"max_tokens": 0}, "max_tokens must be"),
    ({"models": ["sim/nonexistent-profile"]}, "nonexistent-profile"),
    ({"models": ["openai/m@ftp://x"]}, "base_url must start with http"),
    ({"models": [""]}, "empty model name"),
    ({"messages": [{"role": "robot", "content": "x"}]}, r"messages\[0\] must be a dict with role"),
    ({"messages": {"role": "user", "content": "x"}}, "messages must be a list"),
])
def test_bad_input_is_refused_before_any_request(kwargs: dict, message: str) -> None:
    args = {"prompt": "hi", "models": ["openai/m@http://127.0.0.1:9/v1"], **kwargs}
    with pytest.raises(ConfigError, match=message):
        lg.run(args.pop("prompt"), args.pop("models"), **args)


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        lg.run("hi", ["sim/fast"], no_such_option=1)


def test_duplicate_names_get_distinct_labels() -> None:
    from llmgrid_nb.multiplexer import unique_names
    from llmgrid_nb.sources.resolve import resolve_source

    srcs = [resolve_source(m) for m in ["sim/fast", "sim/fast", "sim/slow", "sim/fast"]]
    assert unique_names(srcs) == ["sim/fast", "sim/fast#2", "sim/slow", "sim/fast#3"]


@pytest.mark.parametrize(("spec", "cls", "route"), [
    ("sim/steady", lg.Simulated, "sim"),
    ("ollama/llama3.2", lg.Ollama, "direct-ollama"),
    ("openai/qwen@http://localhost:8000/v1", lg.OpenAICompatible, "direct-openai"),
    ("gpt-4o-mini", lg.OpenAICompatible, "direct-openai"),
    ("groq/llama-3.1-8b-instant", lg.OpenAICompatible, "direct-openai"),
    ("anthropic/claude-3-5-haiku-latest", lg.Anthropic, "direct-anthropic"),
    ("gemini/gemini-2.5-flash", lg.Gemini, "direct-gemini"),
    ("openai/responses/o4-mini", lg.OpenAIResponses, "direct-openai-responses"),
    ("sim/steady?api=anthropic", lg.Simulated, "sim"),
    ("litellm:anthropic/claude-3-5-haiku-latest", lg.LiteLLM, "litellm"),
    ("litellm:gemini/gemini-2.5-flash", lg.LiteLLM, "litellm"),
    ("bedrock/anthropic.claude-3-haiku", lg.LiteLLM, "litellm"),
    ("litellm:openai/qwen@http://localhost:8000/v1", lg.LiteLLM, "litellm"),
    ("litellm:sim/steady", lg.LiteLLM, "litellm"),
])
def test_model_strings_pick_the_documented_route(spec: str, cls: type, route: str) -> None:
    from llmgrid_nb.sources.resolve import resolve_source

    src = resolve_source(spec)
    assert type(src) is cls and src.route == route and src.name == spec


def test_secret_never_shows_itself() -> None:
    fake = "sk-" + "abcdefghijklmnop"  # built at run time: not a key in the source
    s = lg.Secret(fake)
    assert "abcdef" not in repr(s) + str(s) + f"{s}" + repr([s])
    assert s.redact(f"key {fake} here") == "key *** here"
    src = lg.OpenAICompatible("m", "http://x/v1", api_key=fake)
    assert "abcdef" not in repr(src) + repr(vars(src) if hasattr(src, "__dict__") else "")
