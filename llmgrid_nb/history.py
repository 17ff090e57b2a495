"""Every run of this process, and an optional SQLite log that survives kernel restarts; and the
plain values the views read (charts, reports, exports): ``RunRecord`` for one run, ``History``
for many. Nothing here knows the live Grid: a Grid gives its run as a RunRecord (``grid.record()``).

The log grows with the package: a run whose frames have columns the log's tables lack (newer
summary columns, a provider's own ``server_*`` figures) adds them first, and reading an older
log gives every summary column in its dtype, NA where the log has none. A run logged before
conversations existed was the one turn of a conversation of its own: it reads as turn 1 with
its run_id as conversation_id.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .config import persistent_log_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["History", "Recordable", "RunRecord", "as_plain", "current_log", "history", "known_number", "log_to", "persist_run",
           "record_run", "run_record"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as the views read it: its two frames (``grid.chunks``, ``grid.summary``, as the run
    recorded them) and what they leave out: the prompt, the start time and the run's status
    ("done", "cancelled" when the user stopped it, or "running")."""

    run_id: str
    prompt: str
    chunks: pd.DataFrame
    summary: pd.DataFrame
    started_at: float | None = None
    status: str = "done"

    def __repr__(self) -> str:
        return f"<RunRecord {self.run_id} {self.status}: {len(self.summary)} streams, {len(self.chunks)} chunks>"


class Recordable(Protocol):
    """A live run (a Grid): the views, exports and history take it by asking for its record."""

    def record(self) -> RunRecord:
        """The run so far as a plain value."""
        ...


def run_record(run: RunRecord | Recordable) -> RunRecord:
    """``run`` as a RunRecord: a live run (a Grid) is asked for its ``record()``; anything else
    shaped like one run (``run_id``, ``prompt``, ``chunks``, ``summary``) is read as one."""
    if isinstance(run, RunRecord):
        return run
    if _is_live(run):
        return run.record()
    if all(hasattr(run, name) for name in ("run_id", "prompt", "chunks", "summary")):
        status = getattr(run, "status", "done")  # before the frames: they are final once it says so
        return RunRecord(run.run_id, run.prompt, run.chunks, run.summary,  # type: ignore[attr-defined]
                         started_at=getattr(run, "started_at", None), status=status)
    raise TypeError(f"expected a Grid or a RunRecord (grid.record(), history.run(run_id)), got {type(run).__name__}")


def as_plain(data: Any) -> Any:
    """``data`` as a plain value: a live run (a Grid) becomes its ``record()``; frames, records and
    histories stay as they are. How the views that take any of these read a Grid."""
    return data.record() if _is_live(data) else data


def _is_live(data: object) -> bool:
    # Looked up on the type: a DataFrame's columns are attributes of the instance.
    return not isinstance(data, RunRecord) and callable(getattr(type(data), "record", None))


@dataclass(frozen=True)
class History:
    """Chunks and summaries of many runs, each row with its run_id and prompt."""

    chunks: pd.DataFrame
    summary: pd.DataFrame

    def run(self, run_id: str | None = None) -> RunRecord:
        """One run of this history (default: the last) as a RunRecord: its rows, without the
        ``prompt`` and ``started_at`` columns (fields of the record), with its status: "cancelled"
        when some pane was stopped, else "done"."""
        if self.summary.empty:
            raise ValueError("this history has no runs")
        runs = list(dict.fromkeys(self.summary["run_id"].astype(str)))
        chosen = run_id if run_id is not None else runs[-1]
        if chosen not in runs:
            raise ValueError(f"no run {chosen!r} in this history; runs are {runs}")
        summary = self.summary[self.summary["run_id"].astype(str) == chosen].reset_index(drop=True)
        chunks = self.chunks[self.chunks["run_id"].astype(str) == chosen].reset_index(drop=True)
        prompt = str(summary["prompt"].iloc[0]) if "prompt" in summary.columns else ""
        started = known_number(summary["started_at"].iloc[0]) if "started_at" in summary.columns else None
        stopped = "status" in summary.columns and bool((summary["status"].astype(str) == "cancelled").any())
        status = "cancelled" if stopped else "done"
        return RunRecord(chosen, prompt, chunks.drop(columns=["prompt"], errors="ignore"),
                         summary.drop(columns=["prompt", "started_at"], errors="ignore"), started, status)

    def __repr__(self) -> str:
        runs = self.summary["run_id"].nunique() if len(self.summary) else 0
        return f"<History {runs} runs, {len(self.summary)} streams, {len(self.chunks)} chunks>"


def known_number(value: object) -> float | None:
    """``value`` as a float, or None when it is missing, NA or NaN (a frame's cell, for display)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


_lock = threading.Lock()
#: This process's runs, read when the history is asked for (a live run's frames are built then).
_runs: list[RunRecord | Recordable] = []
_log_path: Path | None = None


def log_to(path: str | Path | None) -> None:
    """Append every finished run to the SQLite file at ``path`` (None stops logging)."""
    global _log_path
    _log_path = Path(path).expanduser() if path is not None else None


def current_log() -> Path | None:
    """Where finished runs are appended now: ``log_to``'s path, else LLMGRID_LOG, else None."""
    return _log_path or persistent_log_path()


def record_run(run: RunRecord | Recordable) -> None:
    """Remember a finished run (cheap: a Grid's DataFrames are built only when the history is
    asked for, never on the engine loop that calls this)."""
    with _lock:
        _runs.append(run)


def persist_run(run: RunRecord | Recordable, path: Path | None) -> None:
    """Append a finished run to the SQLite log at ``path`` (call off the engine loop)."""
    if path is not None:
        chunks, summary = _with_prompt(run_record(run))
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


def _with_prompt(run: RunRecord) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's frames as a History holds them: with its prompt, and its start time in the summary."""
    import pandas as pd

    chunks = run.chunks.copy()
    summary = run.summary.copy()
    chunks.insert(1, "prompt", pd.Series([run.prompt] * len(chunks), dtype="string", index=chunks.index))
    summary.insert(1, "prompt", pd.Series([run.prompt] * len(summary), dtype="string", index=summary.index))
    summary.insert(2, "started_at", run.started_at if run.started_at is not None else float("nan"))
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
        runs = list(_runs)
    if not runs:
        from .metrics import CHUNK_COLUMNS, SUMMARY_COLUMNS

        return History(pd.DataFrame(columns=["run_id", "prompt", *CHUNK_COLUMNS[1:]]),
                       pd.DataFrame(columns=["run_id", "prompt", "started_at", *SUMMARY_COLUMNS[1:]]))
    pairs = [_with_prompt(run_record(r)) for r in runs]
    return History(pd.concat([c for c, _ in pairs], ignore_index=True),
                   pd.concat([s for _, s in pairs], ignore_index=True))
