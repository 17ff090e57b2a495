"""llmgrid_nb: watch several LLMs stream side by side in a notebook, then measure them with pandas."""

from __future__ import annotations

from .api import arun, run, start
from .bench import BenchResult, bench
from .config import Secret, load_dotenv
from .errors import ConfigError, LLMGridError, ProviderError, StreamParseError, StreamTimeout
from .events import (
    Done,
    Error,
    Event,
    FinalSynthesis,
    InterimAnalysis,
    Progress,
    Reasoning,
    Refusal,
    SearchResult,
    Status,
    Token,
    ToolCall,
    Usage,
)
from .export import ExportedFiles, html_report, read_exported, to_csv, to_parquet
from .grid import Grid
from .history import History, history, log_to
from .leaderboard import leaderboard
from .sources.anthropic import Anthropic
from .sources.brave import Brave
from .sources.gemini import Gemini
from .sources.litellm import LiteLLM
from .sources.master import MasterSynthesis
from .sources.ollama import Ollama
from .sources.openai_responses import OpenAIResponses
from .sources.openai_sse import OpenAICompatible
from .sources.simulated import Simulated
from .votes import votes

__version__ = "0.1.0"


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext llmgrid_nb`` registers ``%llmgrid`` (IPython imported only then)."""
    from .magic import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%unload_ext llmgrid_nb`` removes ``%llmgrid``."""
    from .magic import unload_ipython_extension as _unload

    _unload(ipython)


__all__ = [
    "Anthropic",
    "BenchResult",
    "Brave",
    "ConfigError",
    "Done",
    "Error",
    "Event",
    "ExportedFiles",
    "FinalSynthesis",
    "Gemini",
    "Grid",
    "History",
    "InterimAnalysis",
    "LLMGridError",
    "LiteLLM",
    "MasterSynthesis",
    "Ollama",
    "OpenAICompatible",
    "OpenAIResponses",
    "Progress",
    "ProviderError",
    "Reasoning",
    "Refusal",
    "SearchResult",
    "Secret",
    "Simulated",
    "Status",
    "StreamParseError",
    "StreamTimeout",
    "Token",
    "ToolCall",
    "Usage",
    "arun",
    "bench",
    "history",
    "html_report",
    "leaderboard",
    "load_dotenv",
    "log_to",
    "read_exported",
    "run",
    "start",
    "to_csv",
    "to_parquet",
    "votes",
]
