"""Runs made by hand as plain values: what the views (charts, reports, exports, history) read,
with no Grid, multiplexer or simulator behind them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from llmgrid_nb.history import History, RunRecord
from llmgrid_nb.metrics import CHUNK_COLUMNS, SUMMARY_COLUMNS, typed_summary

ANSWER = "Hello **SSE** world"
PARTIAL = "Hel"
ERROR = "connection reset by peer"
TOOL_CALL = 'lookup({"q": "sse"})'
STARTED_AT = 1_700_000_000.0


def hand_made_run(run_id: str = "hand1", prompt: str = "Explain SSE <b>", *,
                  started_at: float = STARTED_AT) -> RunRecord:
    """Two panes: "fast" answered in three chunks and called a tool; "broken" sent one chunk,
    then failed. The figures are chosen to be easy to check: TTFT 0.10 s and 0.20 s, 4 tokens at
    12 tokens/s, $0.0012 for "fast", no known cost for "broken"."""
    rows = [  # source, kind, t_s, tokens, text
        ("fast", "token", 0.10, 1, "Hello "),
        ("fast", "token", 0.20, 1, "**SSE** "),
        ("broken", "token", 0.25, 1, PARTIAL),
        ("fast", "token", 0.30, 1, "world"),
        ("fast", "tool_call", 0.35, 1, TOOL_CALL),
        ("broken", "error", 0.40, 0, ERROR),
    ]
    source, kind, t_s, tokens, text = (list(column) for column in zip(*rows))
    chunks = pd.DataFrame({
        "run_id": pd.Series([run_id] * len(rows), dtype="string"),
        "conversation_id": pd.Series([run_id] * len(rows), dtype="string"),
        "turn": np.ones(len(rows), dtype=np.int64),
        "source": pd.Series(source, dtype="string"),
        "seq": np.asarray([0, 1, 0, 2, 3, 1], dtype=np.int64),
        "kind": pd.Series(kind, dtype="string"),
        "t_s": np.asarray(t_s, dtype=np.float64),
    })
    chunks["gap_s"] = chunks.groupby("source", sort=False)["t_s"].diff()
    chunks["chars"] = np.asarray([len(t) if k != "error" else 0 for t, k in zip(text, kind)], dtype=np.int64)
    chunks["tokens"] = np.asarray(tokens, dtype=np.int64)
    chunks["text"] = pd.Series(text, dtype="string")
    summary = pd.DataFrame([
        {"run_id": run_id, "conversation_id": run_id, "turn": 1, "source": "fast", "model": "fast-model",
         "route": "direct-openai", "status": "done", "ttft_s": 0.10, "ttfo_s": 0.10, "e2e_s": 0.35,
         "n_chunks": 4, "output_tokens": 4, "tokens_source": "usage", "tpot_s": 0.25 / 3,
         "decode_tokens_per_s": 12.0, "e2e_tokens_per_s": 4 / 0.35, "icl_p50_s": 0.10, "icl_p99_s": 0.10,
         "stalls": 0, "attempts": 1, "warnings": 0, "resumed": 0, "t_request_s": 0.0, "finish_reason": "stop",
         "cost_usd": 0.0012, "input_cost_usd": 0.0002, "output_cost_usd": 0.001, "cost_source": "price-table",
         "price_source": "a hand-made price", "text": ANSWER, "reasoning": "", "refusal": "",
         "tool_calls": json.dumps([{"id": "c1", "name": "lookup", "arguments": '{"q": "sse"}'}])},
        {"run_id": run_id, "conversation_id": run_id, "turn": 1, "source": "broken", "model": "broken-model",
         "route": "direct-openai", "status": "failed", "ttft_s": 0.20, "ttfo_s": 0.20, "e2e_s": 0.20,
         "n_chunks": 1, "output_tokens": 1, "tokens_source": "chunks", "stalls": 0, "attempts": 1, "warnings": 0,
         "resumed": 0, "t_request_s": 0.05, "error": ERROR, "error_type": "reset", "cost_source": "unknown",
         "text": PARTIAL, "reasoning": "", "refusal": "", "tool_calls": "[]"},
    ]).reindex(columns=list(SUMMARY_COLUMNS))
    return RunRecord(run_id, prompt, chunks[list(CHUNK_COLUMNS)], typed_summary(summary), started_at=started_at)


def history_of(*runs: RunRecord) -> History:
    """Runs as a History holds them: every row with its prompt, and the summary with the start time."""
    def framed(frame: pd.DataFrame, run: RunRecord, summary: bool) -> pd.DataFrame:
        frame = frame.assign(prompt=pd.Series([run.prompt] * len(frame), index=frame.index, dtype="string"))
        return frame.assign(started_at=run.started_at) if summary else frame

    return History(pd.concat([framed(r.chunks, r, False) for r in runs], ignore_index=True),
                   pd.concat([framed(r.summary, r, True) for r in runs], ignore_index=True))
