"""The vocabulary every wire dialect shares: timed frames, the encoder seam and the JSON/SSE bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Protocol, Union

from .generation import Completion, Piece
from .sendlog import SendRecord

__all__ = [
    "TOKEN_KINDS",
    "Encoder",
    "Frame",
    "FrameData",
    "json_bytes",
    "runs_of_kind",
    "sse_event",
]

TOKEN_KINDS = frozenset({"content", "reasoning", "tool_call"})

FrameData = Union[bytes, Callable[[SendRecord], bytes]]


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes due at ``offset`` seconds after the request; ``data`` may be computed at send time.

    ``kind`` is what the send log records: a token kind (``content``, ``reasoning``,
    ``tool_call``) for frames that carry one piece, else the frame's role in the stream
    (``role``, ``start``, ``ping``, ``block_start``, ``block_stop``, ``signature``,
    ``finish``, ``usage``, ``done``). Faults count token frames and drop the end kinds.
    """

    offset: float
    kind: str
    data: FrameData


class Encoder(Protocol):
    """A stream format: how to encode a whole completion and the pieces faults need.

    The fault pieces may be computed at send time (a dialect that numbers its events
    numbers an inserted one in sequence).
    """

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """All frames of a normal stream; ``offsets`` has one entry per piece (at least one)."""
        ...

    def content(self, text: str) -> FrameData:
        """One content chunk."""
        ...

    def raw_content(self, text: bytes) -> FrameData:
        """One content chunk whose text is inserted as raw bytes (possibly invalid UTF-8)."""
        ...

    def malformed(self) -> FrameData:
        """A line that is not valid JSON."""
        ...

    def error(self) -> FrameData:
        """An in-band error event."""
        ...

    def body(self, completion: Completion, offsets: list[float], total_s: float) -> bytes:
        """The non-streamed response to the same request."""
        ...


def json_bytes(value: object) -> bytes:
    """Compact UTF-8 JSON, as OpenAI, Anthropic and Ollama write it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def sse_event(name: bytes, data: bytes) -> bytes:
    """One named server-sent event."""
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def runs_of_kind(pieces: tuple[Piece, ...]) -> list[tuple[str, int, int]]:
    """``(kind, first, last)`` index ranges of consecutive pieces of one kind: the blocks of a message."""
    runs: list[tuple[str, int, int]] = []
    for i, piece in enumerate(pieces):
        if runs and runs[-1][0] == piece.kind:
            runs[-1] = (piece.kind, runs[-1][1], i)
        else:
            runs.append((piece.kind, i, i))
    return runs
