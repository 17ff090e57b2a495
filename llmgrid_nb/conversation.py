"""Conversations: every pane keeps its own transcript, turn after turn.

Turn 1 sends every pane the same prior history (``messages=``, if any). Each later turn sends a
pane the messages it was sent before, its own answer (a partial answer with a note, if it failed
or was cancelled) and the new question. The state is a small frozen value held by the Grid; the
multiplexer never sees it: a pane's history reaches its source through ``ContinuedSource``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .events import Event
from .sources.base import Prompt, Source, StreamContext

__all__ = ["ROLES", "ContinuedSource", "Conversation", "answer_message", "check_messages"]

ROLES = frozenset({"system", "user", "assistant"})
Message = Mapping[str, str]


def check_messages(messages: object) -> tuple[dict[str, str], ...]:
    """A prior chat history as role/content dicts (OpenAI's shape), or a one-line ConfigError."""
    if messages is None:
        return ()
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ConfigError("messages must be a list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ConfigError(f"messages[{i}] must be a dict with role (system, user or assistant) and text "
                              f"content, got {m!r:.80}")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    return tuple(out)


def answer_message(text: str, status: str, error: str | None = None) -> dict[str, str]:
    """A pane's answer as the assistant turn of the next request; an unfinished one says so, so
    the model knows it was cut short."""
    if status == "done":
        return {"role": "assistant", "content": text}
    why = "it was stopped" if status == "cancelled" else f"the stream failed: {error or status}"
    note = f"[this answer is incomplete: {why}]"
    return {"role": "assistant", "content": f"{text}\n\n{note}" if text else note}


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a run stands in its conversation: its id, the turn number (1 for the first
    question), the shared history turn 1 was sent, and what each pane was sent before this
    turn's question (``history``, keyed by pane name)."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    turn: int = 1
    shared: tuple[dict[str, str], ...] = ()
    history: Mapping[str, tuple[dict[str, str], ...]] = field(default_factory=dict)

    def sent(self, pane: str) -> tuple[dict[str, str], ...]:
        """The history pane ``pane`` was sent with this turn's question."""
        return self.history.get(pane, self.shared)

    def transcript(self, pane: str, prompt: str, system: str | None, answer: Mapping[str, str]) -> list[dict[str, str]]:
        """Pane ``pane``'s whole conversation after this turn: what it was sent, then its answer."""
        sent = list(self.sent(pane))
        if system and not any(m["role"] == "system" for m in sent):
            sent.insert(0, {"role": "system", "content": system})
        return [*sent, {"role": "user", "content": prompt}, dict(answer)]

    def next(self, transcripts: Mapping[str, Sequence[Mapping[str, str]]]) -> Conversation:
        """The next turn: each pane continues from its own transcript."""
        return Conversation(self.id, self.turn + 1, self.shared,
                            {name: tuple(dict(m) for m in t) for name, t in transcripts.items()})


class ContinuedSource:
    """A source whose every request of this turn carries ``history`` before the question.

    Everything else (name, model, route, host, validate, prepare, ...) is the wrapped source's.
    """

    def __init__(self, source: Source, history: Sequence[Message]) -> None:
        self.source = source
        self.history: tuple[Message, ...] = tuple(history)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.source, attr)

    def __repr__(self) -> str:
        return f"ContinuedSource({self.source!r}, {len(self.history)} messages)"

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """The wrapped source's stream of ``prompt`` as the next turn of ``history``."""
        return self.source.stream(prompt.with_history(self.history), ctx)
