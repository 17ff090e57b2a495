"""Plain-text rendering of a finished run, for terminals, exports and ``--no-widget``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from .grid import Grid

__all__ = ["cost_line", "text_report"]


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


def text_report(grid: Grid, *, width: int = 100) -> str:
    """Each source's status line (with its cost when known), its refusal, answer and error, then
    the run's total cost: stable for exports."""
    from .cost import format_usd

    summary = grid.summary.set_index("source")
    texts = grid.texts
    refused = _refusals(grid.chunks)
    parts = []
    for name in grid.sources:
        row = summary.loc[name]
        cost = format_usd(_known(row.cost_usd), row.cost_source) if "cost_usd" in row.index else ""
        head = (f"── {name} · {row.status} · TTFT {_fmt(row.ttft_s, ' s')} · "
                f"{row.output_tokens} tokens · {_fmt(row.decode_tokens_per_s, ' tok/s', 1)} "
                f"{f'· {cost} ' if cost else ''}")
        parts.append(head + "─" * max(0, width - len(head)))
        if refused.get(name):
            parts.append(f"[refusal] {refused[name].rstrip()}")
        if texts[name]:
            parts.append(texts[name].rstrip())
        tools = [e for e in grid.events if e.kind == "tool_call" and e.source == name]
        for call in tools:
            parts.append(f"[tool call] {call.name}({call.arguments})")  # type: ignore[union-attr]
        if isinstance(row.error, str) and row.error:
            parts.append(f"[error] {row.error}")
        parts.append("")
    total = cost_line(grid.summary)
    if total:
        parts.extend([total, ""])
    return "\n".join(parts)


def _known(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
