"""Conversations: every pane keeps its own transcript, turn after turn.

Turn 1 sends every pane the same prior history (``messages=``, if any). Each later turn sends a
pane the messages it was sent before, its own answer (a partial answer with a note, if it failed
or was cancelled) and the new question. The state is a small frozen value held by the Grid; the
multiplexer never sees it: a pane's history reaches its source through ``ContinuedSource``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .events import Event
from .sources.base import Prompt, Source, StreamContext

__all__ = ["ROLES", "ContinuedSource", "Conversation", "Transcripts", "answer_message", "check_messages",
           "with_system"]

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
    if status == "cancelled":
        why = "it was stopped"
    elif status == "failed":
        why = f"the stream failed: {error or status}"
    else:  # read while the run streams
        why = f"it was still {status}"
    note = f"[this answer is incomplete: {why}]"
    return {"role": "assistant", "content": f"{text}\n\n{note}" if text else note}


def with_system(history: Sequence[Message], system: str | None) -> tuple[dict[str, str], ...]:
    """``history`` with ``system`` as its system message (replacing any; None removes it)."""
    rest = [dict(m) for m in history if m["role"] != "system"]
    return tuple([{"role": "system", "content": system}, *rest] if system else rest)


@dataclass(frozen=True, slots=True)
class Transcripts(Mapping[str, tuple[dict[str, str], ...]]):
    """A conversation after one turn: its id, the turn, and each model pane's whole transcript
    (what it was sent, the question, its answer), keyed by pane name."""

    id: str
    turn: int
    panes: Mapping[str, tuple[dict[str, str], ...]]

    def __getitem__(self, pane: str) -> tuple[dict[str, str], ...]:
        return self.panes[pane]

    def __iter__(self) -> Iterator[str]:
        return iter(self.panes)

    def __len__(self) -> int:
        return len(self.panes)

    def __repr__(self) -> str:
        return f"<Transcripts {self.id} turn {self.turn}: {', '.join(self.panes)}>"


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

    def with_system(self, system: str | None) -> Conversation:
        """This turn with ``system`` as every pane's system message (a follow-up's ``system=``)."""
        return Conversation(self.id, self.turn, with_system(self.shared, system),
                            {name: with_system(h, system) for name, h in self.history.items()})


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
