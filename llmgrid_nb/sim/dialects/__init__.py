"""The chat dialects the simulator speaks, one module per provider wire protocol, and the routes to them."""

from __future__ import annotations

from .anthropic import Anthropic
from .base import BadRequest, ChatRequest, Dialect, Route
from .gemini import Gemini, gemini_route
from .ollama import Ollama
from .openai_chat import OpenAIChat
from .openai_responses import OpenAIResponses

__all__ = ["ANTHROPIC", "CHAT_PATHS", "GEMINI", "BadRequest", "ChatRequest", "Dialect", "Route", "route"]

ANTHROPIC = Anthropic()
GEMINI = Gemini()
CHAT_PATHS: dict[str, Dialect] = {
    "/v1/chat/completions": OpenAIChat(),
    "/api/chat": Ollama(),
    "/v1/messages": ANTHROPIC,
    "/v1/responses": OpenAIResponses(),
}


def route(path: str, query: str) -> Route | None:
    """The chat route for a (percent-decoded) path and query string, or None if it is no chat endpoint."""
    dialect = CHAT_PATHS.get(path)
    if dialect is not None:
        return Route(dialect)
    return gemini_route(path, query, GEMINI)
