"""Plain-text rendering of a finished run, for terminals, exports and ``--no-widget``.

A view: it reads the run's frames (a RunRecord; a Grid is read as its record)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from .history import known_number

if TYPE_CHECKING:
    import pandas as pd

    from .history import Recordable, RunRecord

__all__ = ["cost_line", "text_report", "turn_note"]


def _fmt(value: object, unit: str, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return f"{float(value):.{digits}f}{unit}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"


def _refusals(chunks: pd.DataFrame) -> dict[str, str]:
    """Each refusing source's refusal: its chunks of kind ``refusal``, joined in order."""
    rows = chunks[chunks["kind"].astype(str) == "refusal"]
    parts: dict[str, list[str]] = {}
    for source, text in zip(rows["source"].astype(str), rows["text"].astype(str)):
        parts.setdefault(source, []).append(text)
    return {source: "".join(texts) for source, texts in parts.items()}


def cost_line(summary: pd.DataFrame) -> str:
    """The run's total cost over the panes whose cost is known ("" when none is): for reports."""
    from .cost import format_usd

    if "cost_usd" not in summary.columns:
        return ""
    known = summary[summary["cost_usd"].notna()]
    if known.empty:
        return ""
    simulated = bool((known["cost_source"].astype(str) == "simulated").any())
    total = format_usd(float(known["cost_usd"].sum()), "simulated" if simulated else None)
    note = "" if len(known) == len(summary) else f" ({len(known)} of {len(summary)} panes have a known cost)"
    return f"total cost {total}{note}{'; sim: a simulated price, not a real cost' if simulated else ''}"


def turn_note(summary: pd.DataFrame) -> str:
    """"turn 3 of conversation <id>" for a follow-up's frames ("" for a first question): for reports."""
    if "turn" not in summary.columns or summary.empty:
        return ""
    turns = summary["turn"].dropna()
    if turns.empty or int(turns.max()) <= 1:
        return ""
    conversation = summary["conversation_id"].dropna() if "conversation_id" in summary.columns else turns[:0]
    of = f" of conversation {conversation.iloc[0]}" if not conversation.empty else ""
    return f"turn {int(turns.max())}{of}"


def text_report(grid: RunRecord | Recordable, *, width: int = 100) -> str:
    """Each source's status line (with its cost when known), its refusal, answer, tool calls and
    error, then the run's total cost: stable for exports. ``grid``: a RunRecord, or a Grid."""
    from .cost import format_usd
    from .history import run_record

    run = run_record(grid)
    chunks = run.chunks
    refused = _refusals(chunks)
    turn = turn_note(run.summary)
    parts = [f"{turn[0].upper()}{turn[1:]}: {run.prompt}", ""] if turn else []
    for _, row in run.summary.iterrows():
        name = str(row.source)
        cost = format_usd(known_number(row.cost_usd), row.cost_source) if "cost_usd" in row.index else ""
        head = (f"── {name} · {row.status} · TTFT {_fmt(row.ttft_s, ' s')} · "
                f"{row.output_tokens} tokens · {_fmt(row.decode_tokens_per_s, ' tok/s', 1)} "
                f"{f'· {cost} ' if cost else ''}")
        parts.append(head + "─" * max(0, width - len(head)))
        if refused.get(name):
            parts.append(f"[refusal] {refused[name].rstrip()}")
        text = _answer(row, chunks)
        if text:
            parts.append(text.rstrip())
        for call in _tool_calls(row, chunks):
            parts.append(f"[tool call] {call}")
        if isinstance(row.error, str) and row.error:
            parts.append(f"[error] {row.error}")
        parts.append("")
    total = cost_line(run.summary)
    if total:
        parts.extend([total, ""])
    return "\n".join(parts)


def _own_rows(chunks: pd.DataFrame, source: str, kinds: tuple[str, ...]) -> pd.DataFrame:
    return chunks[(chunks["source"].astype(str) == source) & chunks["kind"].astype(str).isin(kinds)]


def _answer(row: Any, chunks: pd.DataFrame) -> str:
    """The pane's answer: the summary's ``text``, else (a log written before it) joined from its chunks."""
    text = row.get("text")
    if isinstance(text, str):
        return text
    return "".join(_own_rows(chunks, str(row.source), ("token", "final_synthesis"))["text"].astype(str))


def _tool_calls(row: Any, chunks: pd.DataFrame) -> list[str]:
    """The pane's tool calls as ``name(arguments)``: from the summary's ``tool_calls``, else its chunks."""
    listed = row.get("tool_calls")
    if isinstance(listed, str):
        try:
            calls = json.loads(listed)
        except ValueError:
            calls = None
        if isinstance(calls, list):
            return [f"{c.get('name', '')}({c.get('arguments', '')})" for c in calls if isinstance(c, dict)]
    return list(_own_rows(chunks, str(row.source), ("tool_call",))["text"].astype(str))

