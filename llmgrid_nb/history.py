"""Every run of this process, and an optional SQLite log that survives kernel restarts.

The log grows with the package: a run whose frames have columns the log's tables lack (newer
summary columns, a provider's own ``server_*`` figures) adds them first, and reading an older
log gives every summary column in its dtype, NA where the log has none. A run logged before
conversations existed was the one turn of a conversation of its own: it reads as turn 1 with
its run_id as conversation_id.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import persistent_log_path

if TYPE_CHECKING:
    import pandas as pd

    from .grid import Grid

__all__ = ["History", "current_log", "history", "log_to", "persist_run", "record_run"]

_lock = threading.Lock()
_grids: list[Grid] = []
_log_path: Path | None = None


@dataclass(frozen=True)
class History:
    """Chunks and summaries of many runs, each row with its run_id and prompt."""

    chunks: pd.DataFrame
    summary: pd.DataFrame

    def __repr__(self) -> str:
        runs = self.summary["run_id"].nunique() if len(self.summary) else 0
        return f"<History {runs} runs, {len(self.summary)} streams, {len(self.chunks)} chunks>"


def log_to(path: str | Path | None) -> None:
    """Append every finished run to the SQLite file at ``path`` (None stops logging)."""
    global _log_path
    _log_path = Path(path).expanduser() if path is not None else None


def current_log() -> Path | None:
    """Where finished runs are appended now: ``log_to``'s path, else LLMGRID_LOG, else None."""
    return _log_path or persistent_log_path()


def record_run(grid: Grid) -> None:
    """Remember a finished run (cheap: the DataFrames are built only when asked for)."""
    with _lock:
        _grids.append(grid)


def persist_run(grid: Grid, path: Path | None) -> None:
    """Append a finished run to the SQLite log at ``path`` (call off the engine loop)."""
    if path is not None:
        chunks, summary = _with_prompt(grid)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock, sqlite3.connect(path) as con:
            _append(con, "chunks", chunks)
            _append(con, "summary", summary)


def _append(con: sqlite3.Connection, table: str, frame: pd.DataFrame) -> None:
    """Append ``frame`` to ``table``, first adding the columns the table does not have yet."""
    have = {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}
    if have:
        for col in frame.columns:
            if col not in have:
                kind = _sqlite_type(frame[col])
                name = str(col).replace('"', '""')
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {kind}')
    frame.to_sql(table, con, if_exists="append", index=False)


def _sqlite_type(column: pd.Series) -> str:
    from pandas.api.types import is_float_dtype, is_integer_dtype

    if is_integer_dtype(column.dtype):
        return "INTEGER"
    return "REAL" if is_float_dtype(column.dtype) else "TEXT"


def _with_prompt(grid: Grid) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    chunks = grid.chunks.copy()
    summary = grid.summary.copy()
    chunks.insert(1, "prompt", pd.Series([grid.prompt] * len(chunks), dtype="string", index=chunks.index))
    summary.insert(1, "prompt", pd.Series([grid.prompt] * len(summary), dtype="string", index=summary.index))
    summary.insert(2, "started_at", grid.started_at)
    return chunks, summary


def _logged_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary read from the log, with every summary column in its dtype (NA in an older log)."""
    from .metrics import SUMMARY_COLUMNS, typed_summary

    known = ["run_id", "prompt", "started_at", *SUMMARY_COLUMNS[1:]]
    frame = _with_turns(summary.reindex(columns=known + [c for c in summary.columns if c not in known]))
    return typed_summary(frame, empty_answers=False)  # SQLite keeps "": a NULL answer is one never logged


def _with_turns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with turn 1 and its own run_id as conversation where a log never recorded them."""
    import pandas as pd

    if "conversation_id" not in frame.columns:
        after = "prompt" if "prompt" in frame.columns else "run_id"
        frame.insert(frame.columns.get_loc(after) + 1, "conversation_id", pd.NA)
    if "turn" not in frame.columns:
        frame.insert(frame.columns.get_loc("conversation_id") + 1, "turn", pd.NA)
    frame["conversation_id"] = frame["conversation_id"].astype("string").fillna(frame["run_id"].astype("string"))
    frame["turn"] = pd.to_numeric(frame["turn"], errors="coerce").fillna(1).astype("int64")
    return frame


def history(path: str | Path | None = None) -> History:
    """All runs of this process; with ``path``, every run ever logged to that SQLite file."""
    import pandas as pd

    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            from .errors import ConfigError

            raise ConfigError(f"no run log at {p}")
        with sqlite3.connect(p) as con:
            chunks, summary = pd.read_sql("SELECT * FROM chunks", con), pd.read_sql("SELECT * FROM summary", con)
        return History(_with_turns(chunks), _logged_summary(summary))
    with _lock:
        grids = list(_grids)
    if not grids:
        from .metrics import CHUNK_COLUMNS, SUMMARY_COLUMNS

        return History(pd.DataFrame(columns=["run_id", "prompt", *CHUNK_COLUMNS[1:]]),
                       pd.DataFrame(columns=["run_id", "prompt", "started_at", *SUMMARY_COLUMNS[1:]]))
    pairs = [_with_prompt(g) for g in grids]
    return History(pd.concat([c for c, _ in pairs], ignore_index=True),
                   pd.concat([s for _, s in pairs], ignore_index=True))
