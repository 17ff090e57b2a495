"""The event vocabulary: what every source yields and every sink consumes.

Each event is a small frozen dataclass with ``source`` (the pane's unique name), ``t_s``
(seconds since the run started, on the engine's monotonic clock: when the bytes that carried it
reached the machine, from the kernel's receive stamp on plain HTTP (``rx_stamps``), else when
they were read) and a class-level ``kind``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Union

__all__ = [
    "CONTENT_KINDS",
    "STATUSES",
    "Done",
    "Error",
    "Event",
    "FinalSynthesis",
    "InterimAnalysis",
    "Progress",
    "Reasoning",
    "Refusal",
    "SearchResult",
    "Status",
    "Token",
    "ToolCall",
    "Transcript",
    "Usage",
    "accumulate",
]

#: Lifecycle states a source passes through, in the order they usually happen.
STATUSES = ("queued", "connecting", "waiting", "streaming", "retrying", "done", "failed", "cancelled")
#: Event kinds that carry model output: they define TTFT, e2e and inter-chunk latency.
CONTENT_KINDS = frozenset({"token", "reasoning", "refusal", "tool_call", "final_synthesis"})


@dataclass(frozen=True, slots=True)
class Status:
    """A lifecycle change: queued, connecting, waiting, streaming, retrying, done, failed, cancelled."""

    source: str
    t_s: float
    state: str
    detail: str = ""
    kind: ClassVar[str] = "status"


@dataclass(frozen=True, slots=True)
class Token:
    """A delta of answer text."""

    source: str
    t_s: float
    text: str
    kind: ClassVar[str] = "token"


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A delta of reasoning ("thinking") text, streamed before or beside the answer."""

    source: str
    t_s: float
    text: str
    kind: ClassVar[str] = "reasoning"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delta of a refusal: the model declining to answer, sent apart from the answer text
    (OpenAI's ``delta.refusal``). The stream's finish reason then reads ``refusal``."""

    source: str
    t_s: float
    text: str
    kind: ClassVar[str] = "refusal"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call, assembled from the provider's argument fragments."""

    source: str
    t_s: float
    id: str
    name: str
    arguments: str
    kind: ClassVar[str] = "tool_call"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the provider, and its own timings when it sends them (Ollama)."""

    source: str
    t_s: float
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    server: Mapping[str, float] = field(default_factory=dict)
    kind: ClassVar[str] = "usage"


@dataclass(frozen=True, slots=True)
class Progress:
    """Progress of a multi-stage source (search, enrichment): ``done`` of ``total`` at ``stage``."""

    source: str
    t_s: float
    stage: str
    done: int = 0
    total: int | None = None
    detail: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    kind: ClassVar[str] = "progress"


@dataclass(frozen=True, slots=True)
class Error:
    """A failure. ``fatal`` errors end the source; others are warnings and the stream goes on.

    ``recoverable`` says whether a retry could succeed; ``partial_text`` is the answer text
    received before the failure, which is always kept.
    """

    source: str
    t_s: float
    message: str
    recoverable: bool = False
    partial_text: str = ""
    status_code: int | None = None
    fatal: bool = True
    error_type: str = "provider"
    kind: ClassVar[str] = "error"


@dataclass(frozen=True, slots=True)
class Done:
    """The source finished normally, with the provider's finish reason."""

    source: str
    t_s: float
    finish_reason: str | None = None
    kind: ClassVar[str] = "done"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One web search result, as soon as the search response is parsed."""

    source: str
    t_s: float
    rank: int
    title: str
    url: str
    description: str = ""
    age: str = ""
    kind: ClassVar[str] = "search_result"


@dataclass(frozen=True, slots=True)
class InterimAnalysis:
    """An intermediate finding of a multi-stage source (e.g. what one fetched page says)."""

    source: str
    t_s: float
    text: str
    kind: ClassVar[str] = "interim_analysis"


@dataclass(frozen=True, slots=True)
class FinalSynthesis:
    """A delta of a synthesised answer (the aggregator's or the master view's)."""

    source: str
    t_s: float
    text: str
    kind: ClassVar[str] = "final_synthesis"


Event = Union[
    Status, Token, Reasoning, Refusal, ToolCall, Usage, Progress, Error, Done,
    SearchResult, InterimAnalysis, FinalSynthesis,
]


@dataclass(slots=True)
class Transcript:
    """What one source said, accumulated from its events."""

    status: str = "queued"
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    results: list[SearchResult] = field(default_factory=list)
    analysis: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None


def accumulate(events: Iterable[Event]) -> dict[str, Transcript]:
    """Fold events into one transcript per source (a pure function of the events)."""
    out: dict[str, Transcript] = {}
    for ev in events:
        tr = out.get(ev.source)
        if tr is None:
            tr = out[ev.source] = Transcript()
        if isinstance(ev, (Token, FinalSynthesis)):
            tr.text += ev.text
        elif isinstance(ev, Reasoning):
            tr.reasoning += ev.text
        elif isinstance(ev, Refusal):
            tr.refusal += ev.text
        elif isinstance(ev, ToolCall):
            tr.tool_calls.append(ev)
        elif isinstance(ev, SearchResult):
            tr.results.append(ev)
        elif isinstance(ev, InterimAnalysis):
            tr.analysis.append(ev.text)
        elif isinstance(ev, Status):
            tr.status = ev.state
        elif isinstance(ev, Done):
            tr.finish_reason = ev.finish_reason
        elif isinstance(ev, Error):
            if ev.fatal:
                tr.error = ev.message
        elif isinstance(ev, (Usage, Progress)):
            pass
        else:  # pragma: no cover - exhaustiveness guard
            raise TypeError(f"unknown event {ev!r}")
    return out
