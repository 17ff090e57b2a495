"""Plain-text rendering of a finished run, for terminals, exports and ``--no-widget``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from .grid import Grid

__all__ = ["text_report"]


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


def text_report(grid: Grid, *, width: int = 100) -> str:
    """Each source's status line, its refusal, answer and error, then nothing else: stable for exports."""
    summary = grid.summary.set_index("source")
    texts = grid.texts
    refused = _refusals(grid.chunks)
    parts = []
    for name in grid.sources:
        row = summary.loc[name]
        head = (f"── {name} · {row.status} · TTFT {_fmt(row.ttft_s, ' s')} · "
                f"{row.output_tokens} tokens · {_fmt(row.decode_tokens_per_s, ' tok/s', 1)} ")
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
    return "\n".join(parts)
