"""Everything read from the environment, in one place, and the Secret wrapper for API keys."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "DEFAULT_MODELS",
    "HOSTED_OPENAI_COMPATIBLE",
    "Secret",
    "default_models",
    "env_key",
    "load_dotenv",
    "ollama_base_url",
    "persistent_log_path",
]

#: What `run()` and `%llmgrid` use when no models are given and LLMGRID_MODELS is unset.
DEFAULT_MODELS = ("sim/fast", "sim/steady", "sim/reasoning")


@dataclass(frozen=True, slots=True)
class HostedProvider:
    """An OpenAI-compatible hosted API that the direct SSE path talks to."""

    base_url: str
    key_env: tuple[str, ...]


#: LiteLLM-style prefixes whose endpoint speaks OpenAI's SSE, so the fast direct path serves them.
HOSTED_OPENAI_COMPATIBLE: Mapping[str, HostedProvider] = {
    "openai": HostedProvider("https://api.openai.com/v1", ("OPENAI_API_KEY",)),
    "groq": HostedProvider("https://api.groq.com/openai/v1", ("GROQ_API_KEY",)),
    "deepseek": HostedProvider("https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
    "openrouter": HostedProvider("https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
    "together_ai": HostedProvider("https://api.together.xyz/v1", ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY")),
    "mistral": HostedProvider("https://api.mistral.ai/v1", ("MISTRAL_API_KEY",)),
    "fireworks_ai": HostedProvider("https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",)),
}


class Secret:
    """An API key that never shows itself: repr, str and format print a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The key itself, for the one place that puts it in a request header."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by a mask."""
        return text.replace(self._value, "***") if self._value and len(self._value) >= 4 else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickle a key into a file or another process by accident
        raise TypeError("a Secret cannot be pickled; pass the key again in the other process")


def env_key(names: Sequence[str]) -> Secret | None:
    """The first non-empty environment variable among ``names``, as a Secret."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return Secret(value)
    return None


def ollama_base_url() -> str:
    """Ollama's base URL from OLLAMA_HOST, else localhost:11434.

    A bare ``host`` or ``host:port`` gets ``http://`` and Ollama's port 11434 when none is given;
    a full URL (behind a proxy, say) is used as it is. ``0.0.0.0`` (a listen address) means this
    machine.
    """
    host = os.environ.get("OLLAMA_HOST", "").strip().rstrip("/")
    if not host:
        return "http://127.0.0.1:11434"
    if "://" not in host:
        hostport = host.split("/")[0]
        host = "http://" + (hostport if ":" in hostport else hostport + ":11434")
    return host.replace("://0.0.0.0", "://127.0.0.1", 1)


def default_models() -> list[str]:
    """Models from LLMGRID_MODELS (comma-separated), else the simulator's profiles."""
    raw = os.environ.get("LLMGRID_MODELS", "")
    models = [m.strip() for m in raw.split(",") if m.strip()]
    return models or list(DEFAULT_MODELS)


def persistent_log_path() -> Path | None:
    """The SQLite file every finished run is appended to, from LLMGRID_LOG, if set."""
    raw = os.environ.get("LLMGRID_LOG", "").strip()
    return Path(raw).expanduser() if raw else None


def load_dotenv(path: str | os.PathLike[str], *, override: bool = False) -> list[str]:
    """Read KEY=VALUE lines from a .env file into the environment; return the names set.

    Values are never logged or returned. Lines may use ``export``, quotes and ``#`` comments.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"no .env file at {p}")
    names: list[str] = []
    for lineno, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"{p}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if override or name not in os.environ:
            os.environ[name] = value
            names.append(name)
    return names
