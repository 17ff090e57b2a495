"""Cost per answer: LiteLLM's bundled prices read offline, the provider's own figure, the
simulator's declared price, unknown models, and the budget refused before anything is sent."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.cost import PRICE_MAP_FILE, format_usd, price_for
from llmgrid_nb.sources.anthropic import Anthropic

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "fixtures" / "real_streams"


def bundled_map() -> dict[str, Any]:
    """The price map as it ships inside the installed litellm, read here on its own."""
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    return json.loads((Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE).read_text())


def sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def chat_body(text: str, usage: dict[str, Any] | None) -> list[bytes | float]:
    body: list[bytes | float] = [sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]}),
                                 sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})]
    if usage is not None:
        body.append(sse({"choices": [], "usage": usage}))
    return [*body, b"data: [DONE]\n\n"]


@pytest.mark.parametrize(("label", "model", "route", "key"), [
    ("gpt-4o-mini", "gpt-4o-mini", "direct-openai", "gpt-4o-mini"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "direct-anthropic", "claude-sonnet-4-5"),
    ("gemini/gemini-2.5-flash", "gemini-2.5-flash", "direct-gemini", "gemini/gemini-2.5-flash"),
])
def test_prices_are_the_bundled_maps_own_figures(label: str, model: str, route: str, key: str) -> None:
    entry = bundled_map()[key]
    price = price_for(label, model, route)
    assert price is not None and price.key == key
    assert price.input == entry["input_cost_per_token"] and price.output == entry["output_cost_per_token"]
    assert price.cache_read == entry.get("cache_read_input_token_cost")
    assert price.max_output_tokens == entry["max_output_tokens"]
    assert price.source == f"litellm {importlib.metadata.version('litellm')} price map"


def test_the_map_is_read_without_importing_litellm_or_touching_the_network() -> None:
    code = ("import socket, sys\n"
            "def no_network(*a, **k): raise AssertionError('network')\n"
            "socket.socket.connect = no_network\n"
            "import llmgrid_nb\n"
            "assert 'llmgrid_nb.cost' not in sys.modules and 'pandas' not in sys.modules\n"
            "from llmgrid_nb.cost import price_for\n"
            "p = price_for('gpt-4o-mini', 'gpt-4o-mini', 'direct-openai')\n"
            "assert p is not None and 'litellm' not in sys.modules\n"
            "print(p.source)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == f"litellm {importlib.metadata.version('litellm')} price map"


@pytest.mark.parametrize(("label", "model", "route"), [
    ("openai/gpt-4o-mini@http://127.0.0.1:8000/v1", "gpt-4o-mini", "direct-openai"),  # your own server
    ("ollama/llama3.2", "llama3.2", "direct-ollama"),
    ("litellm:ollama/llama3.2", "ollama/llama3.2", "litellm"),
    ("sim/steady", "steady", "sim"),
    ("my-finetune", "my-finetune-v3", "direct-openai"),
    ("groq/not-a-model", "not-a-model", "direct-openai"),
    # The same bare name from another provider is not this provider's price.
    ("groq/claude-sonnet-4-5", "claude-sonnet-4-5", "direct-openai"),
])
def test_local_servers_the_bare_simulator_and_unknown_models_have_no_price(label: str, model: str,
                                                                           route: str) -> None:
    assert price_for(label, model, route) is None


def test_a_cost_the_provider_reports_wins(scripted: ScriptedServer) -> None:
    """OpenRouter's recorded stream reports ``usage.cost``: that is the cost, as it said."""
    raw = (REAL / "openai_chat" / "openrouter_reasoning_cost.sse").read_bytes()
    scripted.scripts.append(Script(body=[raw[i:i + 200] for i in range(0, len(raw), 200)]))
    grid = lg.run("hi", [lg.OpenAICompatible("anthropic/claude-sonnet-4.5", scripted.url + "/v1",
                                             name="openrouter/anthropic/claude-sonnet-4.5")], retries=0)
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.server_cost_usd == 0.000669
    assert row.cost_usd == 0.000669 and row.cost_source == "provider"
    assert row.price_source == "provider (usage.cost)"
    assert pd.isna(row.input_cost_usd) and pd.isna(row.output_cost_usd)


def test_reported_usage_at_the_maps_price(scripted: ScriptedServer) -> None:
    """gpt-4o-mini's usage at the bundled price; reasoning tokens are inside completion_tokens."""
    usage = {"prompt_tokens": 14, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 8}}
    scripted.scripts.append(Script(body=chat_body("Hello there", usage)))
    grid = lg.run("hi", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")], retries=0)
    entry = bundled_map()["gpt-4o-mini"]
    row = grid.summary.iloc[0]
    assert row.tokens_source == "usage" and row.cost_source == "price-table"
    assert row.input_cost_usd == pytest.approx(14 * entry["input_cost_per_token"], rel=1e-12)
    assert row.output_cost_usd == pytest.approx(30 * entry["output_cost_per_token"], rel=1e-12)
    assert row.cost_usd == pytest.approx(row.input_cost_usd + row.output_cost_usd, rel=1e-12)
    assert row.price_source == f"litellm {importlib.metadata.version('litellm')} price map"
    assert str(grid.summary.cost_usd.dtype) == "Float64"


def test_cached_prompt_tokens_at_the_cache_rates(scripted: ScriptedServer) -> None:
    """Anthropic's usage with cache reads and writes: each part of the prompt at its own rate."""
    raw = (REAL / "anthropic" / "anthropic_text.sse").read_text()
    raw = raw.replace('"cache_creation_input_tokens":0,"cache_read_input_tokens":0',
                      '"cache_creation_input_tokens":200,"cache_read_input_tokens":1000')
    scripted.scripts.append(Script(body=[raw.encode()]))
    grid = lg.run("hi", [Anthropic("claude-sonnet-4-5", base_url=scripted.url, api_key="k")], retries=0)
    entry = bundled_map()["claude-sonnet-4-5"]
    row = grid.summary.iloc[0]
    assert row.prompt_tokens == 1220 and row.output_tokens == 5 and row.cost_source == "price-table"
    want_in = (20 * entry["input_cost_per_token"] + 1000 * entry["cache_read_input_token_cost"]
               + 200 * entry["cache_creation_input_token_cost"])
    assert row.input_cost_usd == pytest.approx(want_in, rel=1e-12)
    assert row.output_cost_usd == pytest.approx(5 * entry["output_cost_per_token"], rel=1e-12)


def test_no_reported_usage_means_no_cost_never_a_guess(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=chat_body("Hello there", None)))
    grid = lg.run("hi", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")], retries=0)
    row = grid.summary.iloc[0]
    assert row.tokens_source == "tokenizer" and row.cost_source == "unknown"
    assert pd.isna(row.cost_usd) and pd.isna(row.price_source)


def test_the_simulators_declared_price_is_labelled_simulated() -> None:
    model = "sim/steady?tokens=30&rate=300&price_in=0.15&price_out=0.6"
    grid = lg.run("Explain SSE", [model, "sim/fast?tokens=5"])
    summary = grid.summary.set_index("source")
    priced, unknown = summary.loc[model], summary.loc["sim/fast?tokens=5"]
    assert priced.cost_source == "simulated" and priced.price_source == "simulator model options"
    assert priced.output_cost_usd == pytest.approx(30 * 0.6 / 1e6)
    assert priced.input_cost_usd == pytest.approx(priced.prompt_tokens * 0.15 / 1e6)
    assert unknown.cost_source == "unknown" and pd.isna(unknown.cost_usd)
    assert format_usd(priced.cost_usd, priced.cost_source).startswith("sim $")


@pytest.mark.parametrize("option", ["price_in=-1", "price_out=nan", "price_in=free", "price_out=inf"])
def test_a_bad_declared_price_is_refused(option: str) -> None:
    with pytest.raises(lg.ConfigError, match="USD per million tokens"):
        lg.run("hi", [f"sim/fast?{option}"])


def test_a_run_over_budget_is_refused_and_nothing_is_sent(scripted: ScriptedServer) -> None:
    scripted.scripts.append(Script(body=chat_body("Hello", {"prompt_tokens": 1, "completion_tokens": 1})))
    expensive = "sim/steady?price_in=100&price_out=400"  # 120 tokens at most: $0.048 out
    with pytest.raises(lg.ConfigError) as info:
        lg.run("Explain SSE", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1"), expensive, "sim/fast"],
               budget_usd=0.05)
    message = str(info.value)
    out = bundled_map()["gpt-4o-mini"]["max_output_tokens"] * bundled_map()["gpt-4o-mini"]["output_cost_per_token"]
    assert "over budget_usd=0.05" in message and f"gpt-4o-mini {format_usd(out)} (16,384 output tokens)" in message
    assert "16,384 output tokens" in message and "120 output tokens" in message
    assert "sim/fast not counted (no price known)" in message
    assert scripted.requests == [], "nothing was sent"
    # With max_tokens the worst case shrinks under the budget, and the run goes ahead.
    grid = lg.run("Explain SSE", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")], budget_usd=0.05,
                  max_tokens=100)
    assert grid.statuses == {"gpt-4o-mini": "done"} and len(scripted.requests) == 1


def test_an_anthropic_pane_is_bounded_by_the_max_tokens_its_request_sends() -> None:
    from llmgrid_nb.cost import worst_case
    from llmgrid_nb.sources.base import Prompt

    src = Anthropic("claude-sonnet-4-5", base_url="http://127.0.0.1:9", api_key="k", thinking_budget=2048)
    (bound,) = worst_case([src], ["claude"], Prompt("Explain SSE"))
    assert bound.output_tokens == 4096 + 2048  # the request's default, not the model's 64,000


@pytest.mark.parametrize("budget", [-0.01, math.nan, math.inf, "1", True])
def test_a_bad_budget_is_refused_before_anything_is_sent(budget: Any, scripted: ScriptedServer) -> None:
    with pytest.raises(lg.ConfigError, match="budget_usd must be a number of US dollars >= 0"):
        lg.run("hi", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")], budget_usd=budget)
    assert scripted.requests == []


def test_bench_checks_the_budget_before_its_first_run(scripted: ScriptedServer) -> None:
    with pytest.raises(lg.ConfigError, match="over budget_usd"):
        lg.bench(["short", "a much longer prompt " * 50], [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")],
                 runs=2, warmup=0, progress=False, budget_usd=0.001)
    assert scripted.requests == []


def test_the_magic_takes_a_budget_and_refuses_in_one_line() -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "llmgrid_nb")
    try:
        shell.user_ns.pop("_llmgrid", None)
        with pytest.raises(UsageError, match=r"worst case \$0\.05 is over budget_usd=0\.01"):
            shell.run_line_magic("llmgrid", "--no-widget --budget 0.01 -m sim/fast?price_out=400 Explain SSE")
        assert "_llmgrid" not in shell.user_ns
        shell.run_line_magic("llmgrid", "--no-widget --budget 0.05 -m sim/fast?tokens=5&price_out=400 Explain SSE")
        assert shell.user_ns["_llmgrid"].summary.cost_source.tolist() == ["simulated"]
    finally:
        shell.run_line_magic("unload_ext", "llmgrid_nb")
        shell.user_ns.pop("_llmgrid", None)


def test_a_resumed_streams_usage_covers_only_its_last_request_so_its_cost_is_unknown(
        scripted: ScriptedServer) -> None:
    first = [sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello, "}}]}), 0.05]
    scripted.scripts.append(Script(body=first, abort=True))
    scripted.scripts.append(Script(body=chat_body("world.", {"prompt_tokens": 20, "completion_tokens": 3})))
    grid = lg.run("hi", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")], resume=True, retries=1)
    row = grid.summary.iloc[0]
    assert row.status == "done" and row.resumed == 1 and grid.texts["gpt-4o-mini"] == "Hello, world."
    assert row.tokens_source != "usage" and row.cost_source == "unknown" and pd.isna(row.cost_usd)


def test_long_prompts_are_priced_at_the_maps_long_context_rates() -> None:
    from llmgrid_nb.cost import stream_cost

    entry = bundled_map()["gemini/gemini-2.5-pro"]
    price = price_for("gemini/gemini-2.5-pro", "gemini-2.5-pro", "direct-gemini")
    short = stream_cost(price, prompt_tokens=1000, output_tokens=10, usage_reported=True, server={})
    long = stream_cost(price, prompt_tokens=250_000, output_tokens=10, usage_reported=True, server={})
    assert short.input_cost_usd == pytest.approx(1000 * entry["input_cost_per_token"])
    assert long.input_cost_usd == pytest.approx(250_000 * entry["input_cost_per_token_above_200k_tokens"])
    assert long.output_cost_usd == pytest.approx(10 * entry["output_cost_per_token_above_200k_tokens"])
