"""The metrics recorder: columnar per-chunk rows and per-stream facts, DataFrames on demand.

Metric definitions (all times on one monotonic clock: when a chunk's bytes reached the machine,
from the kernel's receive stamp on plain HTTP, else when the engine thread read them; "content"
chunks are token, reasoning, tool_call and final_synthesis events with non-empty payload; empty
role chunks and usage-only chunks are not content):

- ``ttfb_s``  request sent -> first parsed message of any kind (a role chunk counts).
- ``ttft_s``  request sent -> first content chunk (reasoning counts).
- ``ttfo_s``  request sent -> first non-reasoning output chunk (answer text or a tool call).
- ``ttst_s``  first content chunk -> second content chunk.
- ``e2e_s``   request sent -> last content chunk (a trailing usage chunk does not count).
- ``output_tokens`` N: the provider's usage when reported (always requested), else an offline
  tokenizer over the streamed text, else the number of content chunks; ``tokens_source`` says
  which ("usage", "tokenizer", "chunks").
- ``tpot_s``  (e2e - ttft) / (N - 1): time per output token after the first, as vLLM's bench
  serve and genai-perf define it. ``decode_tokens_per_s`` = 1 / tpot;
  ``e2e_tokens_per_s`` = N / e2e. Prompt tokens never enter a rate.
- ``icl_*``  inter-chunk latency: the gaps between consecutive content chunks (the full
  distribution is ``gap_s`` of content rows in ``chunks``); p50/p95/p99 here.
- ``stalls``  content gaps longer than the stall threshold (default 1 s).
- ``cost_usd`` = ``input_cost_usd`` + ``output_cost_usd``: the provider's own figure, else the
  reported usage at LiteLLM's bundled prices, else NA; ``cost_source`` says which ("provider",
  "price-table", "simulated", "unknown") and ``price_source`` where the prices came from (see
  ``llmgrid_nb.cost``).
- ``conversation_id``, ``turn``: the conversation the run belongs to and its turn (1 for the first
  question; ``grid.ask`` makes the next). A run started with ``lg.run`` is turn 1 of a new
  conversation whose id is that run's ``run_id``. ``prompt_tokens`` grows with the turns, since
  every turn resends the conversation so far.
- ``text``, ``reasoning``, ``refusal``: what the stream said, joined from its chunks (partial
  after a failure); ``tool_calls``: its tool calls as a JSON list of {id, name, arguments}.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import CONTENT_KINDS, Event
from .tokens import count_tokens

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHUNK_COLUMNS", "SUMMARY_COLUMNS", "SUMMARY_DTYPES", "ChunkRecorder", "StreamFacts", "stream_metrics",
           "typed_summary"]

CHUNK_COLUMNS = ("run_id", "conversation_id", "turn", "source", "seq", "kind", "t_s", "gap_s", "chars", "tokens", "text")
SUMMARY_COLUMNS = (
    "run_id", "conversation_id", "turn", "source", "model", "route", "status", "ttfb_s", "ttft_s", "ttfo_s", "ttst_s", "e2e_s",
    "n_chunks", "prompt_tokens", "output_tokens", "reasoning_tokens", "tokens_source", "tpot_s",
    "decode_tokens_per_s", "e2e_tokens_per_s", "icl_p50_s", "icl_p95_s", "icl_p99_s", "stalls",
    "max_gap_s", "finish_reason", "error", "error_type", "attempts", "warnings", "resumed", "chars",
    "t_request_s", "request_id", "cost_usd", "input_cost_usd", "output_cost_usd", "cost_source",
    "price_source", "text", "reasoning", "refusal", "tool_calls",
)
#: The pandas dtype of every summary column that is not a plain float64 or int64.
SUMMARY_DTYPES: Mapping[str, str] = {
    **dict.fromkeys(("run_id", "conversation_id", "source", "model", "route", "status", "tokens_source", "finish_reason", "error",
                     "error_type", "request_id", "cost_source", "price_source", "text", "reasoning", "refusal",
                     "tool_calls"), "string"),
    **dict.fromkeys(("prompt_tokens", "output_tokens", "reasoning_tokens"), "Int64"),
    **dict.fromkeys(("cost_usd", "input_cost_usd", "output_cost_usd"), "Float64"),
    "t_request_s": "float64",
}
#: Answer columns that are never missing: an empty answer is "" (and no tool calls "[]").
ANSWER_DEFAULTS: Mapping[str, str] = {"text": "", "reasoning": "", "refusal": "", "tool_calls": "[]"}
_NAN = math.nan


@dataclass(slots=True)
class StreamFacts:
    """What is known about one stream beyond its chunks: identity, lifecycle, usage, outcome."""

    source: str
    model: str
    route: str
    status: str = "queued"
    t_request: float | None = None
    t_first_message: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    server: dict[str, float] = field(default_factory=dict)
    finish_reason: str | None = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    warnings: int = 0
    request_id: str | None = None
    resumed: int = 0

    @property
    def usage_reported(self) -> bool:
        """Whether ``output_tokens`` is the provider's own count for the whole answer (a resumed
        stream's usage covers only its last request)."""
        return self.output_tokens is not None and not self.resumed


def _describe(ev: Any) -> str:
    kind = ev.kind
    if kind == "tool_call":
        return f"{ev.name}({ev.arguments})"
    if kind == "search_result":
        return f"{ev.title} <{ev.url}>"
    if kind == "error":
        return ev.message
    if kind == "done":
        return ev.finish_reason or ""
    if kind == "progress":
        return ev.detail or ev.stage
    return ""


_TEXT_KINDS = frozenset({"token", "reasoning", "refusal", "final_synthesis", "interim_analysis"})


class ChunkRecorder:
    """Record every non-status event as a row in plain lists; build DataFrames on demand.

    ``conversation_id`` and ``turn`` label every row: by default the run is turn 1 of a
    conversation of its own (its id the run's); a follow-up's run sets both before it starts."""

    __slots__ = ("run_id", "conversation_id", "turn", "streams", "_source", "_seq", "_kind", "_t", "_text", "_seqs", "_tool_calls")

    def __init__(self, run_id: str, *, conversation_id: str | None = None, turn: int = 1) -> None:
        self.run_id = run_id
        self.conversation_id = conversation_id or run_id
        self.turn = turn
        self.streams: dict[str, StreamFacts] = {}
        self._source: list[str] = []
        self._seq: list[int] = []
        self._kind: list[str] = []
        self._t: list[float] = []
        self._text: list[str] = []
        self._seqs: dict[str, int] = {}
        #: Each source's tool calls with their ids (a row's text has only ``name(arguments)``).
        self._tool_calls: dict[str, list[dict[str, str]]] = {}

    def add_stream(self, source: str, model: str, route: str) -> StreamFacts:
        """Register a stream before its first event."""
        facts = self.streams[source] = StreamFacts(source, model, route)
        self._seqs[source] = 0
        return facts

    def record(self, ev: Event) -> None:
        """Hot path: O(1) appends per event, no pandas."""
        kind = ev.kind
        source = ev.source
        if kind == "status":
            self.streams[source].status = ev.state  # type: ignore[union-attr]
            return
        if kind in _TEXT_KINDS:
            text = ev.text  # type: ignore[union-attr]
        else:
            text = _describe(ev)
            facts = self.streams[source]
            if kind == "usage":
                self._merge_usage(facts, ev)
            elif kind == "done":
                facts.finish_reason = ev.finish_reason  # type: ignore[union-attr]
            elif kind == "tool_call":
                self._tool_calls.setdefault(source, []).append(
                    {"id": ev.id, "name": ev.name, "arguments": ev.arguments})  # type: ignore[union-attr]
            elif kind == "error":
                if ev.fatal:  # type: ignore[union-attr]
                    facts.error = ev.message  # type: ignore[union-attr]
                    facts.error_type = ev.error_type  # type: ignore[union-attr]
                elif ev.error_type != "resumed":  # type: ignore[union-attr]
                    facts.warnings += 1
        seq = self._seqs[source]
        self._seqs[source] = seq + 1
        self._source.append(source)
        self._seq.append(seq)
        self._kind.append(kind)
        self._t.append(ev.t_s)
        self._text.append(text)

    @staticmethod
    def _merge_usage(facts: StreamFacts, ev: Any) -> None:
        if ev.prompt_tokens is not None:
            facts.prompt_tokens = ev.prompt_tokens
        if ev.output_tokens is not None:
            facts.output_tokens = ev.output_tokens
        if ev.reasoning_tokens is not None:
            facts.reasoning_tokens = ev.reasoning_tokens
        facts.server.update(ev.server)

    def __len__(self) -> int:
        return len(self._t)

    def chunks_frame(self) -> pd.DataFrame:
        """One row per received chunk (every event but status changes)."""
        import numpy as np
        import pandas as pd

        n = len(self._t)
        source = self._source[:n]
        kind = self._kind[:n]
        text = self._text[:n]
        df = pd.DataFrame({
            "run_id": pd.Series([self.run_id] * n, dtype="string"),
            "conversation_id": pd.Series([self.conversation_id] * n, dtype="string"),
            "turn": np.full(n, self.turn, dtype=np.int64),
            "source": pd.Series(source, dtype="string"),
            "seq": np.asarray(self._seq[:n], dtype=np.int64),
            "kind": pd.Series(kind, dtype="string"),
            "t_s": np.asarray(self._t[:n], dtype=np.float64),
        })
        df["gap_s"] = df.groupby("source", sort=False)["t_s"].diff()
        is_content = np.fromiter((k in CONTENT_KINDS for k in kind), dtype=bool, count=n)
        df["chars"] = np.where(is_content, [len(t) for t in text], 0).astype(np.int64)
        df["tokens"] = self._chunk_tokens(source, text, is_content)
        df["text"] = pd.Series(text, dtype="string")
        return df[list(CHUNK_COLUMNS)]

    def _chunk_tokens(self, source: list[str], text: list[str], is_content: Any) -> Any:
        import numpy as np

        out = np.zeros(len(text), dtype=np.int64)
        by_model: dict[str, list[int]] = {}
        for i, (src, content) in enumerate(zip(source, is_content)):
            if content:
                by_model.setdefault(self.streams[src].model, []).append(i)
        for model, rows in by_model.items():
            counts = count_tokens([text[i] for i in rows], model)
            out[rows] = counts if counts is not None else 1
        return out

    def summary_frame(self, *, stall_threshold: float = 1.0) -> pd.DataFrame:
        """One row per stream with the metrics defined in this module's docstring."""
        import numpy as np
        import pandas as pd

        from .cost import price_for, stream_cost

        n = len(self._t)
        times = np.asarray(self._t[:n], dtype=np.float64)
        all_kinds, all_text = self._kind, self._text
        content_rows: dict[str, list[int]] = {src: [] for src in self.streams}
        for i, (src, kind) in enumerate(zip(self._source[:n], all_kinds[:n])):
            if kind in CONTENT_KINDS:
                content_rows[src].append(i)
        rows = []
        for src, facts in self.streams.items():
            idx = content_rows[src]
            kinds = [all_kinds[i] for i in idx]
            said: dict[str, list[str]] = {"token": [], "final_synthesis": [], "reasoning": [], "refusal": [], "tool_call": []}
            for i, kind in zip(idx, kinds):
                said[kind].append(all_text[i])
            text = "".join(said["token"]) + "".join(said["final_synthesis"])
            reasoning, refusal = "".join(said["reasoning"]), "".join(said["refusal"])
            if facts.usage_reported:
                n_tokens, token_source = facts.output_tokens, "usage"
            else:
                content_text = "".join(all_text[i] for i, k in zip(idx, kinds) if k != "tool_call")
                counted = count_tokens([content_text], facts.model) if idx else None
                if counted is not None and counted[0] > 0:
                    n_tokens, token_source = counted[0], "tokenizer"
                else:
                    n_tokens, token_source = len(idx), "chunks"
            m = stream_metrics(facts.t_request, facts.t_first_message, times[idx], kinds,
                               n_tokens, stall_threshold=stall_threshold)
            cost = stream_cost(price_for(src, facts.model, facts.route), prompt_tokens=facts.prompt_tokens,
                               output_tokens=facts.output_tokens, usage_reported=token_source == "usage",
                               server=facts.server)
            row: dict[str, Any] = {
                "run_id": self.run_id, "conversation_id": self.conversation_id, "turn": self.turn, "source": src, "model": facts.model, "route": facts.route,
                "status": facts.status, **m,
                "n_chunks": len(idx), "prompt_tokens": facts.prompt_tokens,
                "output_tokens": n_tokens if idx or facts.output_tokens is not None else 0,
                "reasoning_tokens": facts.reasoning_tokens, "tokens_source": token_source,
                "finish_reason": facts.finish_reason, "error": facts.error,
                "error_type": facts.error_type, "attempts": facts.attempts,
                "warnings": facts.warnings, "resumed": facts.resumed,
                "chars": len(text) + len(reasoning) + len(refusal),
                "t_request_s": facts.t_request, "request_id": facts.request_id,
                "cost_usd": cost.cost_usd, "input_cost_usd": cost.input_cost_usd,
                "output_cost_usd": cost.output_cost_usd, "cost_source": cost.cost_source,
                "price_source": cost.price_source, "text": text, "reasoning": reasoning, "refusal": refusal,
                "tool_calls": json.dumps(self._tool_calls.get(src, []), ensure_ascii=False),
            }
            for key, value in facts.server.items():
                row[f"server_{key}"] = value
            if "eval_count" in facts.server and facts.server.get("eval_duration_s"):
                row["server_decode_tokens_per_s"] = facts.server["eval_count"] / facts.server["eval_duration_s"]
            rows.append(row)
        df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS) if not rows else None)
        extra = [c for c in df.columns if c not in SUMMARY_COLUMNS]
        return typed_summary(df.reindex(columns=list(SUMMARY_COLUMNS) + extra))


def typed_summary(df: pd.DataFrame, *, empty_answers: bool = True) -> pd.DataFrame:
    """``df`` with every summary column it has in its documented dtype (SUMMARY_DTYPES), in place.

    For frames read back from files and logs, where counts arrive as floats and text as objects.
    ``empty_answers``: a missing answer is "" (CSV cannot tell the two apart); without it an
    answer column stays NA where it is missing (an older log that never recorded answers).
    """
    import pandas as pd

    for col, dtype in SUMMARY_DTYPES.items():
        if col not in df.columns:
            continue
        values = df[col]
        if empty_answers and col in ANSWER_DEFAULTS:
            values = values.astype(object).where(values.notna(), ANSWER_DEFAULTS[col])
        if dtype == "string":
            df[col] = values.astype("string")
        elif dtype == "float64":
            df[col] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            df[col] = pd.array(pd.to_numeric(values, errors="coerce"), dtype=dtype)
    return df


def stream_metrics(
    t_request: float | None,
    t_first_message: float | None,
    content_times: Any,
    content_kinds: list[str],
    n_tokens: int,
    *,
    stall_threshold: float = 1.0,
) -> Mapping[str, float]:
    """The latency metrics of one stream from its content-chunk arrival times (a pure function)."""
    import numpy as np

    out = dict.fromkeys(("ttfb_s", "ttft_s", "ttfo_s", "ttst_s", "e2e_s", "tpot_s",
                         "decode_tokens_per_s", "e2e_tokens_per_s", "icl_p50_s", "icl_p95_s",
                         "icl_p99_s", "max_gap_s"), _NAN)
    out["stalls"] = 0
    if t_request is None:
        return out
    if t_first_message is not None:
        out["ttfb_s"] = t_first_message - t_request
    times = np.asarray(content_times, dtype=np.float64)
    if times.size == 0:
        return out
    ttft = float(times[0] - t_request)
    e2e = float(times[-1] - t_request)
    out["ttft_s"] = ttft
    out["e2e_s"] = e2e
    answer = [t for t, k in zip(times, content_kinds) if k != "reasoning"]
    if answer:
        out["ttfo_s"] = float(answer[0] - t_request)
    if times.size > 1:
        gaps = np.diff(times)
        out["ttst_s"] = float(gaps[0])
        p50, p95, p99 = np.percentile(gaps, [50, 95, 99])
        out.update(icl_p50_s=float(p50), icl_p95_s=float(p95), icl_p99_s=float(p99),
                   max_gap_s=float(gaps.max()), stalls=int((gaps > stall_threshold).sum()))
    if n_tokens > 1 and e2e > ttft:
        tpot = (e2e - ttft) / (n_tokens - 1)
        out["tpot_s"] = tpot
        out["decode_tokens_per_s"] = 1.0 / tpot
    if n_tokens > 0 and e2e > 0:
        out["e2e_tokens_per_s"] = n_tokens / e2e
    return out
