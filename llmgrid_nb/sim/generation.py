"""What a simulated model says for one request: the token pieces, tool call and usage (pure)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from .corpus import answer_tokens, pick_topic, reasoning_tokens, tokenize
from .profiles import Profile

__all__ = ["Completion", "Piece", "ToolCall", "assistant_prefix", "generate", "last_user_text", "prompt_token_count"]

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_CITIES = ("Paris, France", "Tokyo, Japan", "Lisbon, Portugal", "Nairobi, Kenya", "Toronto, Canada")


@dataclass(frozen=True, slots=True)
class Piece:
    """One streamed token: ``kind`` is ``content``, ``reasoning`` or ``tool_call``."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The single tool call of the ``tools`` profile; ``arguments`` is the JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The whole answer: pieces in stream order, finish reason and token counts."""

    pieces: tuple[Piece, ...]
    finish_reason: str
    prompt_tokens: int
    tool_call: ToolCall | None = None

    @property
    def content(self) -> str:
        """The answer text, as the non-streamed response carries it."""
        return "".join(p.text for p in self.pieces if p.kind == "content")

    @property
    def reasoning(self) -> str:
        """The reasoning text."""
        return "".join(p.text for p in self.pieces if p.kind == "reasoning")

    @property
    def completion_tokens(self) -> int:
        """Generated tokens, reasoning included."""
        return len(self.pieces)

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens."""
        return sum(1 for p in self.pieces if p.kind == "reasoning")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: list[Any]) -> str:
    """The text of the last user message (OpenAI string or parts content), or ''."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def prompt_token_count(messages: list[Any]) -> int:
    """Prompt tokens with the same tokenizer, plus the usual per-message overhead."""
    total = 3
    for message in messages:
        if isinstance(message, dict):
            total += 4 + len(tokenize(_text_of(message.get("content"))))
    return total


def _tool_arguments(tools: list[Any] | None, rng: random.Random) -> tuple[str, dict[str, Any]]:
    name, params = "get_weather", None
    if tools:
        first = tools[0] if isinstance(tools[0], dict) else {}
        fn = first.get("function", first)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            name, params = fn["name"], fn.get("parameters")
    if name == "get_weather" or not isinstance(params, dict):
        return name, {"location": rng.choice(_CITIES), "unit": rng.choice(("celsius", "fahrenheit"))}
    args: dict[str, Any] = {}
    for key, spec in (params.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and spec.get("enum"):
            args[key] = spec["enum"][0]
        elif kind in ("integer", "number"):
            args[key] = rng.randint(1, 10)
        elif kind == "boolean":
            args[key] = True
        elif kind == "array":
            args[key] = []
        else:
            args[key] = rng.choice(_CITIES) if "location" in key or "city" in key else f"sample {key}"
    return name, args


def _fragments(text: str, rng: random.Random) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        step = rng.randint(2, 6)
        out.append(text[i : i + step])
        i += step
    return out


def generate(
    profile: Profile,
    messages: list[Any],
    seed: int,
    *,
    max_tokens: int | None = None,
    tools: list[Any] | None = None,
    xss: bool = False,
) -> Completion:
    """The deterministic answer of ``profile`` to ``messages`` for ``seed``."""
    prompt = last_user_text(messages)
    prompt_tokens = prompt_token_count(messages)
    tool_call = None
    if profile.kind == "tools":
        rng = random.Random(f"tools|{seed}|{prompt}")
        name, args = _tool_arguments(tools, rng)
        arguments = json.dumps(args)
        call_id = "call_" + "".join(rng.choice(_ID_CHARS) for _ in range(24))
        tool_call = ToolCall(call_id, name, arguments)
        pieces = [Piece("tool_call", "")] + [Piece("tool_call", f) for f in _fragments(arguments, rng)]
    else:
        pieces = []
        if profile.kind == "reasoning" and profile.reasoning_tokens:
            pieces = [Piece("reasoning", t) for t in reasoning_tokens(prompt, seed, profile.reasoning_tokens)]
        pieces += [Piece("content", t) for t in answer_tokens(prompt, seed, profile.tokens, xss=xss)]
    prefix = assistant_prefix(messages)
    if prefix and tool_call is None:
        pieces = _continue_after(pieces, prefix)
    finish = "tool_calls" if tool_call else "stop"
    if max_tokens is not None and 0 <= max_tokens < len(pieces):
        pieces = pieces[:max_tokens]
        finish = "length"
    return Completion(tuple(pieces), finish, prompt_tokens, tool_call)


def assistant_prefix(messages: list[Any]) -> str:
    """The text of a final assistant message (a prefill to continue), or ''."""
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        return _text_of(messages[-1].get("content"))
    return ""


def _continue_after(pieces: list[Piece], prefix: str) -> list[Piece]:
    """The pieces that follow ``prefix`` in the answer, as a model continuing a prefill would.

    Reasoning is not repeated. A prefix that ends inside a piece continues with the rest of it;
    one that is not a prefix of this answer gets the whole answer (a real model would improvise).
    """
    content = [p for p in pieces if p.kind == "content"]
    text = "".join(p.text for p in content)
    if not text.startswith(prefix):
        return content
    out: list[Piece] = []
    pos = 0
    for piece in content:
        end = pos + len(piece.text)
        if end > len(prefix):
            out.append(piece if pos >= len(prefix) else Piece("content", piece.text[len(prefix) - pos:]))
        pos = end
    return out


def topic_key(messages: list[Any], seed: int) -> str:
    """The corpus topic an answer to ``messages`` draws from (for diagnostics)."""
    return pick_topic(last_user_text(messages), seed).key
