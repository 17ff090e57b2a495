"""The leaderboard from votes: Bradley–Terry ratings, bootstrap intervals, online Elo (a view on a frame)."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from llmgrid_nb.leaderboard import Battle, battles, leaderboard, online_elo


def frame(rows: list[tuple[list[str], str]]) -> pd.DataFrame:
    return pd.DataFrame({"models": [m for m, _ in rows], "winner": [w for _, w in rows]})


def test_two_models_rating_gap_is_the_log_odds_of_their_record() -> None:
    board = leaderboard(frame([(["a", "b"], "a")] * 30 + [(["a", "b"], "b")] * 10), rounds=50)
    gap = board.set_index("model").rating["a"] - board.set_index("model").rating["b"]
    assert gap == pytest.approx(400 * math.log10(3), abs=3)  # the prior pulls it in by a point or two
    assert list(board.model) == ["a", "b"] and list(board.battles) == [40, 40]
    assert list(board.wins) == [30, 10] and list(board.losses) == [10, 30]


def test_a_known_ordering_is_recovered_from_sampled_votes() -> None:
    strength = {"best": 3.0, "good": 1.5, "fair": 1.0, "poor": 0.4}
    rng = random.Random(7)
    rows = []
    for _ in range(800):
        a, b = rng.sample(sorted(strength), 2)
        rows.append(([a, b], a if rng.random() < strength[a] / (strength[a] + strength[b]) else b))
    board = leaderboard(frame(rows), rounds=100)
    assert list(board.model) == ["best", "good", "fair", "poor"]
    assert (board.rating_lo <= board.rating).all() and (board.rating <= board.rating_hi).all()
    true_gap = 400 * math.log10(strength["best"] / strength["poor"])
    row = board.set_index("model")
    assert row.rating["best"] - row.rating["poor"] == pytest.approx(true_gap, rel=0.2)
    assert list(board.sort_values("elo", ascending=False).model)[0] == "best"


def test_a_vote_among_several_is_battles_won_against_each_and_ties_are_ties() -> None:
    assert battles(["a", "b", "c"], "b") == [Battle("b", "a", 1.0), Battle("b", "c", 1.0)]
    assert battles(["a", "b"], "both_bad") == [Battle("a", "b", 0.5)]
    board = leaderboard(frame([(["a", "b", "c"], "tie")]), rounds=10).set_index("model")
    assert (board.ties == 2).all() and (board.rating.round(6) == 1000).all()
    with pytest.raises(ValueError, match="not among the models shown"):
        battles(["a", "b"], "c")


def test_an_undefeated_model_has_a_finite_rating() -> None:
    board = leaderboard(frame([(["a", "b"], "a")] * 20), rounds=20)
    assert board.rating.map(math.isfinite).all() and board.rating.iloc[0] > board.rating.iloc[1]


def test_online_elo_moves_by_k_over_two_on_an_even_match() -> None:
    assert online_elo([Battle("a", "b", 1.0)], ["a", "b"]) == {"a": 1002.0, "b": 998.0}


def test_no_votes_is_an_empty_board() -> None:
    assert leaderboard(frame([]), rounds=5).empty
