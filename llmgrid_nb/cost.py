"""What an answer cost: prices from LiteLLM's bundled price map, read offline, and the arithmetic.

The map is the JSON file that ships inside the installed litellm package
(``model_prices_and_context_window_backup.json``). It is found without importing litellm (that
takes 3-4 s), read once on first use and never fetched from the network; the litellm version it
came with is recorded beside every figure (``price_source``).

A stream's cost has one of four sources (``cost_source``):

- ``provider``: the provider reported it (OpenRouter's ``usage.cost``, ``server_cost_usd``);
- ``price-table``: the map knows the model and the provider reported usage: prompt tokens at
  the input rate (cached ones at the cache-read rate, Anthropic's cache writes at the
  cache-write rate, where usage reports them), output tokens at the output rate. Reasoning
  tokens are output: every dialect's output count already includes them;
- ``simulated``: a simulator model declared a fake price (``sim/steady?price_in=0.15&price_out=0.6``,
  USD per million tokens), for tests and demos;
- ``unknown``: anything else (a model the map does not know, a local server, no usage): NA, never
  a guess.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import HOSTED_OPENAI_COMPATIBLE

__all__ = [
    "COST_SOURCES",
    "PRICE_MAP_FILE",
    "Cost",
    "PaneBound",
    "Price",
    "PriceMap",
    "check_budget",
    "format_usd",
    "price_for",
    "price_map",
    "stream_cost",
    "validate_budget",
    "worst_case",
]

log = logging.getLogger(__name__)

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"
#: The values of the ``cost_source`` column.
COST_SOURCES = ("provider", "price-table", "simulated", "unknown")
_CHAT_MODES = frozenset({"chat", "completion", "responses"})
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")
#: Routes that talk to a server on the user's own machine or network: never priced.
_LOCAL_ROUTES = frozenset({"direct-ollama"})
_LOCAL_PREFIXES = ("ollama/", "ollama_chat/", "litellm:ollama/", "litellm:ollama_chat/")
_SIM_PREFIXES = ("sim/", "litellm:sim/")
#: The Brave pane (its own search has no token price).
_UNPRICED_ROUTES = frozenset({"simulated", "brave-api"})
_PANE_SUFFIX = re.compile(r"(#\d+|\[\d+\])+$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token of one model, and where the figures came from.

    ``tiers`` are (prompt tokens above which they apply, input, output, cache-read) rates, as
    the map gives them for long-context pricing (Gemini 2.5 Pro above 200k tokens, ...).
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None
    max_output_tokens: int | None = None
    source: str = ""
    simulated: bool = False
    key: str = ""
    tiers: tuple[tuple[int, float, float, float | None], ...] = ()

    def rates(self, prompt_tokens: int) -> tuple[float, float, float | None]:
        """(input, output, cache-read) rates for a request of ``prompt_tokens``."""
        rates = (self.input, self.output, self.cache_read)
        for above, inp, out, cached in self.tiers:
            if prompt_tokens > above:
                rates = (inp, out, cached if cached is not None else self.cache_read)
        return rates


@dataclass(frozen=True, slots=True)
class Cost:
    """One stream's cost in USD (None: unknown) and where it came from."""

    cost_usd: float | None
    input_cost_usd: float | None
    output_cost_usd: float | None
    cost_source: str
    price_source: str | None


UNKNOWN = Cost(None, None, None, "unknown", None)


@dataclass(frozen=True, slots=True)
class PriceMap:
    """LiteLLM's bundled model price map and the litellm version it shipped with."""

    entries: Mapping[str, Any]
    version: str
    path: Path

    @property
    def label(self) -> str:
        """What ``price_source`` says of figures from this map."""
        return f"litellm {self.version} price map"


_lock = threading.Lock()
_map: PriceMap | None = None
_map_loaded = False


def _map_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE
    return path if path.is_file() else None


def price_map() -> PriceMap | None:
    """The bundled price map, read on first use and cached; None when litellm is not installed."""
    global _map, _map_loaded
    if _map_loaded:
        return _map
    import importlib.metadata

    with _lock:
        if not _map_loaded:
            path = _map_path()
            if path is not None:
                try:
                    entries = json.loads(path.read_bytes())
                    version = importlib.metadata.version("litellm")
                    _map = PriceMap(entries, version, path)
                except (OSError, ValueError, importlib.metadata.PackageNotFoundError) as exc:
                    log.warning("LiteLLM's price map at %s is unreadable (%s): costs are unknown", path, exc)
            _map_loaded = True
    return _map


def _rate(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _price_of(key: str, entry: Any, label: str) -> Price | None:
    if not isinstance(entry, dict) or entry.get("mode", "chat") not in _CHAT_MODES:
        return None
    inp, out = _rate(entry, "input_cost_per_token"), _rate(entry, "output_cost_per_token")
    if inp is None or out is None:
        return None
    tiers = []
    for name in entry:
        m = _TIER.match(name)
        if m:
            k = m.group(1)
            t_in, t_out = _rate(entry, name), _rate(entry, f"output_cost_per_token_above_{k}k_tokens")
            if t_in is not None and t_out is not None:
                tiers.append((int(k) * 1000, t_in, t_out, _rate(entry, f"cache_read_input_token_cost_above_{k}k_tokens")))
    max_out = entry.get("max_output_tokens")
    return Price(inp, out, _rate(entry, "cache_read_input_token_cost"), _rate(entry, "cache_creation_input_token_cost"),
                 max_out if isinstance(max_out, int) and not isinstance(max_out, bool) and max_out > 0 else None,
                 label, False, key, tuple(sorted(tiers)))


def _keys(source: str, model: str, route: str) -> list[tuple[str, str | None]]:
    """The price-map keys LiteLLM would use for this stream, most specific first, each with the
    provider its entry must name (None: any). A bare model name is only taken from the provider
    the stream went to: the same name elsewhere may cost something else."""
    bare = model.removeprefix("models/")
    if route == "direct-anthropic":
        return [(bare, "anthropic"), (f"anthropic/{bare}", None)]
    if route == "direct-gemini":
        return [(f"gemini/{bare}", None), (bare, "gemini")]
    if route == "direct-openai-responses":
        return [(bare, "openai"), (f"openai/{bare}", None)]
    if route == "direct-openai":
        prefix, slash, _ = source.partition("/")
        provider = prefix if slash and prefix in HOSTED_OPENAI_COMPATIBLE else "openai"
        if provider == "openai":
            return [(bare, "openai"), (f"openai/{bare}", None)]
        return [(f"{provider}/{bare}", None), (bare, provider)]
    if route == "litellm":
        prefix, slash, rest = model.partition("/")
        return [(model, None), (rest, prefix)] if slash and rest else [(model, None)]
    return [(bare, None)]  # the master view, or a source object of your own: its model name


def _provider_ok(entry: Any, provider: str | None) -> bool:
    if provider is None:
        return True
    named = entry.get("litellm_provider") if isinstance(entry, dict) else None
    return isinstance(named, str) and (named == provider or named.startswith(provider + "-"))


def _simulated_price(model: str) -> Price | None:
    """The fake price a simulator model declares in its options, if any."""
    from .sim.profiles import parse_model

    try:
        opts = parse_model(model)
    except (LookupError, ValueError):
        return None
    if opts.price_in is None and opts.price_out is None:
        return None
    profile = opts.profile
    return Price((opts.price_in or 0.0) / 1e6, (opts.price_out or 0.0) / 1e6,
                 max_output_tokens=profile.tokens + profile.reasoning_tokens,
                 source="simulator model options", simulated=True, key=opts.model)


def _pane_label(source: str) -> str:
    """The model string a pane label was made from: without ``#2`` (a repeat) or ``[1]`` (a choice)."""
    return _PANE_SUFFIX.sub("", source)


def price_for(source: str, model: str, route: str) -> Price | None:
    """The price of a stream, from its source label, model and route; None when not known.

    Local servers (``openai/<model>@<base_url>``, Ollama) and the simulator without a declared
    price are never priced; neither is the Brave pane's search.
    """
    label = _pane_label(source)
    if route == "sim":
        return _simulated_price(model)
    if label.startswith(_SIM_PREFIXES):
        return _simulated_price(label.split("sim/", 1)[1])
    if route == "master":
        declared = _simulated_price(model)
        if declared is not None:
            return declared
    if route in _LOCAL_ROUTES or label.startswith(_LOCAL_PREFIXES):
        return None
    spec = label.removeprefix("litellm:")
    if spec.startswith("openai/") and "@" in spec:
        return None  # openai/<model>@<base_url>: a server of your own
    if route in _UNPRICED_ROUTES:
        return None
    prices = price_map()
    if prices is None:
        return None
    for key, provider in _keys(label, model, route):
        entry = prices.entries.get(key)
        if _provider_ok(entry, provider):
            price = _price_of(key, entry, prices.label)
            if price is not None:
                return price
    return None


def _count(value: Any) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return int(value)
    return 0


def stream_cost(price: Price | None, *, prompt_tokens: int | None, output_tokens: int | None,
                usage_reported: bool, server: Mapping[str, float]) -> Cost:
    """The cost of one stream from its usage and price (``server``: its ``server_*`` figures).

    The provider's own figure wins; a price applies only to usage the provider reported (never
    to a tokenizer's or a chunk count's estimate).
    """
    reported = server.get("cost_usd")
    if isinstance(reported, (int, float)) and math.isfinite(reported) and reported >= 0:
        return Cost(float(reported), None, None, "provider", "provider (usage.cost)")
    if price is None or not usage_reported or prompt_tokens is None or output_tokens is None:
        return UNKNOWN
    inp, out, cache_rate = price.rates(prompt_tokens)
    cached = min(_count(server.get("cache_read_tokens")), prompt_tokens)
    written = min(_count(server.get("cache_creation_tokens")), prompt_tokens - cached)
    plain = prompt_tokens - cached - written
    input_cost = (plain * inp + cached * (cache_rate if cache_rate is not None else inp)
                  + written * (price.cache_creation if price.cache_creation is not None else inp))
    output_cost = output_tokens * out
    return Cost(input_cost + output_cost, input_cost, output_cost,
                "simulated" if price.simulated else "price-table", price.source)


def format_usd(value: float | None, cost_source: str | None = None) -> str:
    """A cost as shown in panes and reports: ``$0.0012``, ``sim $0.0012``; "" when unknown."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    if value == 0:
        text = "$0"
    elif value < 0.0001:
        text = f"${value:.6f}"
    elif value < 1:
        text = f"${value:.4f}"
    else:
        text = f"${value:,.2f}"
    return f"sim {text}" if cost_source == "simulated" else text


# -- the budget: a run's worst case before anything is sent --------------------------------------

#: Tokens a chat request adds per message around its text (role markers), for the worst case.
_MESSAGE_OVERHEAD = 4


@dataclass(frozen=True, slots=True)
class PaneBound:
    """The most one pane of a run can cost: ``usd`` None when it cannot be bounded (``why``)."""

    name: str
    usd: float | None
    output_tokens: int | None = None
    prompt_tokens: int = 0
    why: str = ""


def _prompt_tokens(text: str, model: str) -> int:
    from .tokens import count_tokens

    counted = count_tokens([text], model)
    return counted[0] if counted is not None else len(text)  # a token is rarely under one character


def _max_output(src: Any, prompt: Any, price: Price) -> int | None:
    """The output limit of ``src``'s request: its own or the run's ``max_tokens``, Anthropic's
    default (the API requires one), else the model's ``max_output_tokens`` from the price map."""
    options = getattr(src, "options", None)
    merged = prompt.merged(options) if options is not None else prompt
    if merged.max_tokens is not None:
        return int(merged.max_tokens)
    from .sources.anthropic import DEFAULT_MAX_TOKENS, Anthropic

    if isinstance(src, Anthropic):
        return DEFAULT_MAX_TOKENS + (src.thinking_budget or 0)
    return price.max_output_tokens


def worst_case(sources: Sequence[Any], names: Sequence[str], prompt: Any) -> list[PaneBound]:
    """Each pane's worst case: max output tokens x output price + prompt tokens (counted offline)
    x input price. The master view's prompt also holds every other pane's longest answer."""
    bounds: list[PaneBound] = []
    messages = prompt.messages()
    text = "\n".join(m["content"] for m in messages)
    for src, name in zip(sources, names):
        if getattr(src, "pane_kind", "model") == "search":
            bounds.append(PaneBound(name, None, why="the search pane's synthesis is not bounded"))
            continue
        target = getattr(src, "synthesizer", src)
        price = price_for(target.name, target.model, target.route)
        if price is None:
            bounds.append(PaneBound(name, None, why="no price known"))
            continue
        out = _max_output(target, prompt, price)
        if out is None:
            bounds.append(PaneBound(name, None, why="no output limit known: set max_tokens="))
            continue
        count = getattr(target, "choice_count", None)
        out *= count(prompt) if count is not None else 1
        tokens = _prompt_tokens(text, target.model) + _MESSAGE_OVERHEAD * len(messages)
        if getattr(src, "waits_for_peers", False):
            tokens += sum(b.output_tokens or 0 for b in bounds)
        inp, rate_out, _ = price.rates(tokens)
        bounds.append(PaneBound(name, tokens * inp + out * rate_out, out, tokens))
    return bounds


def _dollars(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else format_usd(value)


def check_budget(budget_usd: Any, sources: Sequence[Any], names: Sequence[str], prompt: Any) -> None:
    """Raise ConfigError when the run's worst case is over ``budget_usd`` (None: no budget)."""
    if budget_usd is None:
        return
    from .errors import ConfigError

    budget = validate_budget(budget_usd)
    bounds = worst_case(sources, names, prompt)
    total = sum(b.usd for b in bounds if b.usd is not None)
    if total <= budget:
        return
    parts = [f"{b.name} {format_usd(b.usd) or '$0'} ({b.output_tokens:,} output tokens)" if b.usd is not None
             else f"{b.name} not counted ({b.why})" for b in bounds]
    shown = f"{budget:.2f}" if round(budget, 2) == budget else f"{budget:g}"
    raise ConfigError(f"this run's worst case {_dollars(total)} is over budget_usd={shown}: {', '.join(parts)}; "
                      "lower max_tokens= or raise budget_usd=")


def validate_budget(budget_usd: Any) -> float:
    """``budget_usd`` as a float: a finite number of US dollars >= 0, else ConfigError."""
    from .errors import ConfigError

    if (not isinstance(budget_usd, (int, float)) or isinstance(budget_usd, bool) or not math.isfinite(budget_usd)
            or budget_usd < 0):
        raise ConfigError(f"budget_usd must be a number of US dollars >= 0, got {budget_usd!r}")
    return float(budget_usd)
