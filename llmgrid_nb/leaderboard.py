"""A leaderboard from the user's own votes: Bradley–Terry ratings with bootstrap intervals, as
FastChat's arena computes them, plus an online Elo column. A view: it takes the votes frame.

A vote names the models shown and the winner: one model ("best of these"), ``"tie"`` or
``"both_bad"`` (a tie, as the arena counts it). A vote among N models is N − 1 battles won by the
winner; a tie is a tie between every pair shown. Ratings are on the Elo scale (400 points = 10:1
odds, 1000 the mean model), fitted by maximum likelihood (Hunter's MM algorithm; a tie counts as
half a win each way) with a weak prior that keeps an undefeated model's rating finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .votes import TIES
from .votes import votes as recorded_votes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["LEADERBOARD_COLUMNS", "TIES", "battles", "bradley_terry", "leaderboard", "online_elo"]

LEADERBOARD_COLUMNS = ("model", "rating", "rating_lo", "rating_hi", "elo", "battles", "wins", "losses", "ties")
_SCALE, _BASE, _INIT = 400.0, 10.0, 1000.0
#: Weight of the prior: one virtual tie of this weight between every model and an average one.
_PRIOR = 0.1


@dataclass(frozen=True, slots=True)
class Battle:
    """One pairwise outcome: ``a`` against ``b``, ``score`` 1 (a won), 0 (b won) or 0.5 (tie)."""

    a: str
    b: str
    score: float


def battles(models: Sequence[str], winner: str) -> list[Battle]:
    """The pairwise battles of one vote among ``models``."""
    shown = list(dict.fromkeys(models))
    if winner in TIES:
        return [Battle(a, b, 0.5) for i, a in enumerate(shown) for b in shown[i + 1:]]
    if winner not in shown:
        raise ValueError(f"the winner {winner!r} is not among the models shown {shown}")
    return [Battle(winner, other, 1.0) for other in shown if other != winner]


def bradley_terry(wins: np.ndarray, *, iterations: int = 2000, tol: float = 1e-10) -> np.ndarray:
    """Elo-scale ratings from ``wins[i, j]`` (how often i beat j; ties as 0.5 each way).

    Hunter's MM update p_i <- W_i / sum_j n_ij / (p_i + p_j), with the prior's virtual ties
    against a reference of strength 1 (the geometric mean is pinned to it)."""
    import numpy as np

    n = wins.shape[0]
    games = wins + wins.T
    won = wins.sum(axis=1) + _PRIOR / 2
    p = np.ones(n)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1) + _PRIOR / (p + 1.0)
        new = won / denom
        new /= math.exp(float(np.log(new).mean()))
        if float(np.abs(new - p).max()) < tol:
            p = new
            break
        p = new
    return _INIT + _SCALE * np.log(p) / math.log(_BASE)


def online_elo(pairs: Sequence[Battle], models: Sequence[str], *, k: float = 4.0) -> dict[str, float]:
    """Elo ratings updated battle by battle in the order given (FastChat's online Elo, K = 4)."""
    rating = dict.fromkeys(models, _INIT)
    for battle in pairs:
        ra, rb = rating[battle.a], rating[battle.b]
        expected = 1.0 / (1.0 + _BASE ** ((rb - ra) / _SCALE))
        rating[battle.a] = ra + k * (battle.score - expected)
        rating[battle.b] = rb - k * (battle.score - expected)
    return rating


def _wins(pairs: Sequence[Battle], index: dict[str, int]) -> np.ndarray:
    import numpy as np

    wins = np.zeros((len(index), len(index)))
    for battle in pairs:
        i, j = index[battle.a], index[battle.b]
        wins[i, j] += battle.score
        wins[j, i] += 1.0 - battle.score
    return wins


def leaderboard(votes: pd.DataFrame | None = None, *, rounds: int = 200, seed: int = 0) -> pd.DataFrame:
    """One row per model: Bradley–Terry ``rating`` with a 95 % bootstrap interval (``rounds``
    resamplings of the battles), online ``elo``, and the number of battles, wins, losses, ties.

    ``votes`` has a ``models`` column (the models shown, a list) and a ``winner`` column (a model,
    ``"tie"`` or ``"both_bad"``), in time order; by default ``lg.votes()``."""
    import numpy as np
    import pandas as pd

    if votes is None:
        votes = recorded_votes()
    pairs = [b for models, winner in zip(votes["models"], votes["winner"]) for b in battles(list(models), winner)]
    names = sorted({m for b in pairs for m in (b.a, b.b)})
    if not names:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    index = {m: i for i, m in enumerate(names)}
    rating = bradley_terry(_wins(pairs, index))
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(names)))
    for r in range(rounds):
        pick = rng.integers(0, len(pairs), len(pairs))
        samples[r] = bradley_terry(_wins([pairs[i] for i in pick], index))
    lo, hi = np.percentile(samples, [2.5, 97.5], axis=0)
    elo = online_elo(pairs, names)
    rows: list[dict[str, Any]] = []
    for m, i in index.items():
        mine = [b for b in pairs if m in (b.a, b.b)]
        won = sum(1 for b in mine if (b.score == 1.0 and b.a == m) or (b.score == 0.0 and b.b == m))
        tied = sum(1 for b in mine if b.score == 0.5)
        rows.append({"model": m, "rating": float(rating[i]), "rating_lo": float(lo[i]), "rating_hi": float(hi[i]),
                     "elo": elo[m], "battles": len(mine), "wins": won, "losses": len(mine) - won - tied,
                     "ties": tied})
    frame = pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))
    return frame.sort_values("rating", ascending=False, ignore_index=True)
