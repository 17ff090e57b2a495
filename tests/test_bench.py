"""lg.bench and sweeps: repetitions, warm-up exclusion, percentiles, goodput, Parquet, resume."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scripted_server import ScriptedServer

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


def test_answers_read_as_a_prompts_by_models_table() -> None:
    prompts = ["Explain SSE", "What is TCP slow start?"]
    models = ["sim/steady?tokens=8&rate=400&ttft=0.01", "sim/fast?tokens=6"]
    result = lg.bench(prompts, models, runs=2, warmup=1, progress=False)
    table = result.answers
    assert list(table.columns) == models, "models across, in the order given"
    assert list(table.index.names) == ["prompt", "run"]
    assert list(table.index) == [(p, r) for p in prompts for r in (1, 2)]
    s = result.summary
    for (prompt, run), row in table.iterrows():
        for model in models:
            cell = s[(s.prompt == prompt) & (s.run_index == run) & (s.source == model)].text.iloc[0]
            assert row[model] == cell and cell
    once = lg.bench(prompts, models, runs=1, warmup=0, progress=False).answers
    assert list(once.index) == prompts and once.index.name == "prompt"


def test_percentiles_have_the_mean_cost_per_answer_and_stay_na_without_one() -> None:
    priced, free = "sim/fast?tokens=6&price_in=10&price_out=1000", "sim/fast?tokens=6"
    result = lg.bench("Explain SSE", [priced, free], runs=3, warmup=0, progress=False)
    costs = result.summary[result.summary.source == priced].cost_usd
    assert (result.summary[result.summary.source == priced].cost_source == "simulated").all()
    row = result.percentiles.loc[(priced, "cost_usd")]
    assert row["n"] == 3 and row["mean"] == pytest.approx(costs.mean())
    assert row["mean"] == pytest.approx((9 * 10 + 6 * 1000) / 1e6)
    unknown = result.percentiles.loc[(free, "cost_usd")]
    assert unknown["n"] == 0 and pd.isna(unknown["mean"])


def test_answers_of_a_resumed_parquet_sweep(tmp_path: Path) -> None:
    units = [Unit(i, p, 0) for i, p in enumerate(["first", "second"])]
    summary, _ = sweep(units, MODELS, out=tmp_path)
    from llmgrid_nb.bench import answers

    table = answers(summary)
    assert list(table.index) == ["first", "second"] and list(table.columns) == MODELS
    assert table.notna().all().all()


def test_messages_go_before_every_prompt_and_a_bad_history_runs_nothing(scripted: ScriptedServer) -> None:
    import httpx

    from llmgrid_nb.sim import default_simulator

    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
               {"role": "assistant", "content": "hello"}]
    result = lg.bench(["q1", "q2"], ["sim/fast?tokens=3"], runs=1, warmup=0, progress=False, messages=history)
    for row in result.summary.itertuples():
        log = httpx.get(f"{default_simulator().url}/_sim/log/{row.request_id}").json()
        assert log["transcript"] == [["system", "be brief"], ["user", "hi"], ["assistant", "hello"], ["user", row.prompt]]
        assert row.turn == 1 and row.conversation_id == row.run_id
    with pytest.raises(lg.ConfigError, match="messages"):
        lg.bench(["q1"], [lg.OpenAICompatible("m", scripted.url + "/v1")], runs=2, progress=False, messages=["hi"])
    assert scripted.requests == []
