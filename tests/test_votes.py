"""The vote store: votes kept for the process and in the SQLite log, read back in a new process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmgrid_nb.errors import ConfigError
from llmgrid_nb.leaderboard import leaderboard
from llmgrid_nb.votes import Vote, record_vote, votes


def test_votes_survive_in_the_log_and_read_back_in_another_process(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite"
    record_vote(Vote("r1", 1, "Which is better?", ("m-a", "m-b"), "m-a", time=1.0), log)
    record_vote(Vote("r2", 2, "And now?", ("m-a", "m-b", "m-c"), "both_bad", time=2.0), log)
    code = ("import sys; from llmgrid_nb.votes import votes; f = votes(sys.argv[1]); "
            "print(f.run_id.tolist(), f.turn.tolist(), f.models.tolist(), f.winner.tolist())")
    out = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("['r1', 'r2'] [1, 2] [['m-a', 'm-b'], ['m-a', 'm-b', 'm-c']] ['m-a', 'both_bad']")
    frame = votes(log)
    assert list(frame.columns) == ["run_id", "turn", "prompt", "models", "winner", "time"]
    assert str(frame.time.dt.tz) == "UTC"
    assert leaderboard(frame, rounds=5).set_index("model").loc["m-a", "wins"] == 1


def test_a_vote_for_a_model_not_shown_is_refused_and_nothing_is_recorded(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite"
    with pytest.raises(ConfigError, match="none of"):
        record_vote(Vote("r", 1, "q", ("a", "b"), "c"), log)
    with pytest.raises(ConfigError, match="at least two"):
        Vote("r", 1, "q", ("a",), "a")
    assert not log.exists()


def test_a_log_without_votes_reads_as_no_votes(tmp_path: Path) -> None:
    import sqlite3

    log = tmp_path / "old.sqlite"
    sqlite3.connect(log).execute("CREATE TABLE summary (run_id TEXT)").connection.commit()
    assert votes(log).empty
