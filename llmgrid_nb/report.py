"""Plain-text rendering of a finished run, for terminals, exports and ``--no-widget``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .grid import Grid

__all__ = ["text_report"]


def _fmt(value: object, unit: str, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return f"{float(value):.{digits}f}{unit}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"


def text_report(grid: Grid, *, width: int = 100) -> str:
    """Each source's status line, its answer (and error), then nothing else: stable for exports."""
    summary = grid.summary.set_index("source")
    texts = grid.texts
    parts = []
    for name in grid.sources:
        row = summary.loc[name]
        head = (f"── {name} · {row.status} · TTFT {_fmt(row.ttft_s, ' s')} · "
                f"{row.output_tokens} tokens · {_fmt(row.decode_tokens_per_s, ' tok/s', 1)} ")
        parts.append(head + "─" * max(0, width - len(head)))
        if texts[name]:
            parts.append(texts[name].rstrip())
        tools = [e for e in grid.events if e.kind == "tool_call" and e.source == name]
        for call in tools:
            parts.append(f"[tool call] {call.name}({call.arguments})")  # type: ignore[union-attr]
        if isinstance(row.error, str) and row.error:
            parts.append(f"[error] {row.error}")
        parts.append("")
    return "\n".join(parts)
