"""Turn the model strings users type into Source objects."""

from __future__ import annotations

import os
import re
from urllib.parse import quote
from typing import Any

from ..config import HOSTED_OPENAI_COMPATIBLE
from ..errors import ConfigError
from .anthropic import Anthropic
from .base import Source
from .gemini import Gemini
from .litellm import LiteLLM
from .ollama import Ollama
from .openai_responses import OpenAIResponses
from .openai_sse import OpenAICompatible
from .simulated import Simulated, simulator_url

__all__ = ["resolve_source"]

_OPENAI_BARE = re.compile(r"^(gpt-|o1|o3|o4|chatgpt-)")


def _sim_base() -> str:
    return simulator_url() + "/v1"


def resolve_source(model: str | Source) -> Source:
    """A Source for a model string, or the object itself if it already is one.

    - ``sim/<profile>[?options]``: the loopback simulator, direct SSE;
    - ``ollama/<model>``: Ollama's NDJSON API at OLLAMA_HOST (default localhost:11434);
    - ``openai/<model>@<base_url>``: any OpenAI-compatible server, direct SSE, no key sent
      unless given (pass a source object with ``api_key=`` for a proxy that needs one);
    - ``openai/<model>``, ``groq/<model>``, ``deepseek/``, ``openrouter/``, ``together_ai/``,
      ``mistral/``, ``fireworks_ai/`` and bare OpenAI names (``gpt-4o-mini``): the hosted API
      over the direct SSE path, key from its environment variable;
    - ``anthropic/<model>``, ``gemini/<model>``, ``openai/responses/<model>``: the native
      Messages, Gemini and Responses APIs, direct (LiteLLM's spellings);
    - ``litellm:<anything above or any LiteLLM model>``: force the LiteLLM route;
    - anything else (``bedrock/...``, ``vertex_ai/...``): LiteLLM.
    """
    if not isinstance(model, str):
        if not (hasattr(model, "stream") and hasattr(model, "name")):
            raise ConfigError(f"not a model string or source: {model!r}")
        return model
    spec = model.strip()
    if not spec:
        raise ConfigError("empty model name")
    if spec.startswith("litellm:"):
        return _litellm_route(spec[len("litellm:"):], label=spec)
    prefix, slash, rest = spec.partition("/")
    if slash and prefix == "sim":
        return Simulated(rest, name=spec)
    if slash and prefix in ("ollama", "ollama_chat"):
        if not rest:
            raise ConfigError(f"{spec!r}: name the Ollama model, e.g. ollama/llama3.2")
        return Ollama(rest, name=spec)
    if slash and prefix == "anthropic" and rest:
        return Anthropic(rest, name=spec)
    if slash and prefix == "gemini" and rest:
        return Gemini(rest, name=spec)
    if slash and prefix == "openai" and rest.startswith("responses/") and rest != "responses/":
        return OpenAIResponses(rest[len("responses/"):], base_url=_openai_base(), name=spec)
    if slash and "@" in rest:
        name, _, base = rest.rpartition("@")
        if prefix != "openai":
            raise ConfigError(f"{spec!r}: '<model>@<base_url>' works with openai/ (OpenAI-compatible servers)")
        return OpenAICompatible(name, base, name=spec)
    if slash and prefix in HOSTED_OPENAI_COMPATIBLE:
        return _hosted(prefix, rest, spec)
    if not slash and _OPENAI_BARE.match(spec):
        return _hosted("openai", spec, spec)
    return LiteLLM(spec, name=spec)


def _hosted(provider: str, model: str, label: str) -> OpenAICompatible:
    hosted = HOSTED_OPENAI_COMPATIBLE[provider]
    base = _openai_base() if provider == "openai" else hosted.base_url
    return OpenAICompatible(model, base, key_env=hosted.key_env, name=label)


def _openai_base() -> str:
    return os.environ.get("OPENAI_BASE_URL", "").strip() or HOSTED_OPENAI_COMPATIBLE["openai"].base_url


def _litellm_route(spec: str, *, label: str) -> LiteLLM:
    prefix, slash, rest = spec.partition("/")
    kwargs: dict[str, Any] = {"name": label}
    if slash and prefix == "sim":
        api = Simulated(rest).api
        if api == "anthropic":
            return LiteLLM(f"anthropic/{rest}", api_base=simulator_url, api_key="sim-no-key", **kwargs)
        if api == "gemini":
            # LiteLLM puts the model into the URL path as it is: the profile's options must be escaped.
            return LiteLLM(f"gemini/{quote(rest, safe='')}", api_base=lambda: simulator_url() + "/v1beta",
                           api_key="sim-no-key", **kwargs)
        if api == "responses":
            return LiteLLM(f"openai/responses/{rest}", api_base=_sim_base, api_key="sim-no-key", **kwargs)
        return LiteLLM(f"openai/{rest}", api_base=_sim_base, api_key="sim-no-key", **kwargs)
    if slash and prefix == "openai" and "@" in rest:
        name, _, base = rest.rpartition("@")
        return LiteLLM(f"openai/{name}", api_base=base, api_key="no-key", **kwargs)
    if slash and prefix in HOSTED_OPENAI_COMPATIBLE:
        return LiteLLM(spec, key_env=HOSTED_OPENAI_COMPATIBLE[prefix].key_env, **kwargs)
    return LiteLLM(spec, **kwargs)
