"""lg.bench and sweeps: repetitions, warm-up exclusion, percentiles, goodput, Parquet, resume."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import llmgrid_nb as lg
from llmgrid_nb.bench import Unit, goodput, sweep

MODELS = ["sim/fast?tokens=10", "sim/steady?tokens=10&rate=300&ttft=0.1"]


def test_runs_are_repeated_warmups_excluded_and_summarised() -> None:
    result = lg.bench("Explain SSE", MODELS, runs=3, warmup=1, concurrency=2, progress=False,
                      slo_ttft_s=0.08)
    assert len(result.summary) == 6 and sorted(result.summary.run_index.unique()) == [1, 2, 3]
    assert result.summary.run_id.nunique() == 3
    table = result.percentiles
    assert table.loc[("sim/fast?tokens=10", "ttft_s"), "n"] == 3
    assert list(table.columns) == ["n", "mean", "std", "p50", "p90", "p95", "p99"]
    fast = result.summary[result.summary.source == "sim/fast?tokens=10"].ttft_s
    assert table.loc[("sim/fast?tokens=10", "ttft_s"), "p50"] == pytest.approx(fast.median())
    good = result.goodput
    assert good is not None and good.loc["sim/steady?tokens=10&rate=300&ttft=0.1", "goodput_ratio"] == 0.0
    assert good.loc["sim/fast?tokens=10", "goodput_ratio"] == 1.0
    assert not lg.history().summary.run_id.isin(result.summary.run_id).any(), "sweeps do not grow history"


def test_goodput_counts_failures_as_bad() -> None:
    summary = pd.DataFrame({"source": ["a", "a", "a"], "status": ["done", "failed", "done"],
                            "ttft_s": [0.1, 0.1, 0.5], "tpot_s": [0.01, 0.01, 0.01]})
    table = goodput(summary, ttft_s=0.2, duration_s=2.0)
    assert table.loc["a"].tolist() == [3, 1, pytest.approx(1 / 3), 0.5]


def test_parquet_sweep_is_readable_and_resumes_without_repeating(tmp_path: Path) -> None:
    units = [Unit(i, p, r) for i, p in enumerate(["first", "second"]) for r in range(3)]
    first, chunks = sweep(units[:4], MODELS, out=tmp_path, concurrency=2)
    assert chunks is None and len(first) == 8
    again, _ = sweep(units, MODELS, out=tmp_path, concurrency=2)
    assert len(again) == 12
    kept = again[again.run_id.isin(first.run_id)]
    assert len(kept) == 8, "finished units are not run again"
    on_disk = pd.read_parquet(tmp_path / "summary")
    assert set(on_disk.prompt) == {"first", "second"} and len(on_disk) == 12
    assert len(pd.read_parquet(tmp_path / "chunks")) > 12
    assert not list(tmp_path.rglob(".part-*")), "no half-written parts"


def test_a_partition_runs_under_dask(tmp_path: Path) -> None:
    import dask
    import dask.bag as db

    units = [Unit(i, f"prompt {i}", 0) for i in range(4)]
    bag = db.from_sequence(units, npartitions=2)

    def run_partition(part: list[Unit]) -> list[int]:
        summary, _ = sweep(part, ["sim/fast?tokens=5"], out=tmp_path)
        return [len(summary)]

    with dask.config.set(scheduler="threads"):
        counts = bag.map_partitions(run_partition).compute()
    assert sum(counts) == 4
    assert len(pd.read_parquet(tmp_path / "summary")) == 4
