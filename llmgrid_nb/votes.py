"""The vote store: every blind comparison's verdict, kept with the run history (this process, and
the SQLite log when one is set, so votes survive a kernel restart)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .history import current_log

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TIES", "VOTE_COLUMNS", "Vote", "record_vote", "votes"]

VOTE_COLUMNS = ("run_id", "turn", "prompt", "models", "winner", "time")
#: The verdicts that name no model: a tie, and "both bad" (counted as a tie by the leaderboard).
TIES = frozenset({"tie", "both_bad"})

_lock = threading.Lock()
_votes: list[Vote] = []


@dataclass(frozen=True, slots=True)
class Vote:
    """One verdict: among the ``models`` shown (real names), the ``winner`` (a model, "tie" or
    "both_bad") for turn ``turn`` of run ``run_id``."""

    run_id: str
    turn: int
    prompt: str
    models: tuple[str, ...]
    winner: str
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if len(self.models) < 2:
            raise ConfigError("a vote needs at least two models shown")
        if self.winner not in self.models and self.winner not in TIES:
            raise ConfigError(f"the winner {self.winner!r} is none of {', '.join(self.models)}, 'tie' or 'both_bad'")


def record_vote(vote: Vote, path: Path | None = None) -> None:
    """Keep ``vote`` for this process and append it to the SQLite log (``path``, else the current
    log, if any)."""
    target = path if path is not None else current_log()
    with _lock:
        _votes.append(vote)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(target) as con:
                con.execute("CREATE TABLE IF NOT EXISTS votes (run_id TEXT, turn INTEGER, prompt TEXT, "
                            "models TEXT, winner TEXT, time REAL)")
                con.execute("INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?)",
                            (vote.run_id, vote.turn, vote.prompt, json.dumps(list(vote.models)), vote.winner,
                             vote.time))


def votes(path: str | Path | None = None) -> pd.DataFrame:
    """Every vote of this process, or with ``path`` every vote in that SQLite log, in time order:
    run_id, turn, prompt, models (the real names shown), winner, time (UTC)."""
    import pandas as pd

    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise ConfigError(f"no run log at {p}")
        with sqlite3.connect(p) as con:
            has = con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='votes'").fetchone()
            rows: Sequence[tuple[object, ...]] = con.execute(
                "SELECT run_id, turn, prompt, models, winner, time FROM votes ORDER BY time").fetchall() if has else []
        records = [Vote(str(r[0]), int(r[1]), str(r[2]), tuple(json.loads(str(r[3]))), str(r[4]), float(r[5]))
                   for r in rows]
    else:
        with _lock:
            records = sorted(_votes, key=lambda v: v.time)
    frame = pd.DataFrame({
        "run_id": pd.Series([v.run_id for v in records], dtype="string"),
        "turn": pd.Series([v.turn for v in records], dtype="int64"),
        "prompt": pd.Series([v.prompt for v in records], dtype="string"),
        "models": pd.Series([list(v.models) for v in records], dtype="object"),
        "winner": pd.Series([v.winner for v in records], dtype="string"),
        "time": pd.to_datetime(pd.Series([v.time for v in records], dtype="float64"), unit="s", utc=True),
    })
    return frame[list(VOTE_COLUMNS)]
