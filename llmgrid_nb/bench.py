"""Repeated and concurrent runs with percentile tables and goodput: a light in-notebook
counterpart of llmperf and vLLM's ``bench serve``.

The unit of work is one (prompt, repetition) pair run against every model. ``sweep`` runs a
list of units with bounded concurrency and, given ``out``, writes each finished unit's rows to
a Parquet dataset at once (``out/summary/``, ``out/chunks/``) so memory stays constant and an
interrupted sweep resumes without repeating finished units. The same function runs one
partition of a larger sweep under Ray or Dask (see the README).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .sources.base import Source

if TYPE_CHECKING:
    import pandas as pd

    from .grid import Grid

__all__ = ["BENCH_METRICS", "BenchResult", "Unit", "answers", "bench", "goodput", "percentiles", "sweep"]

#: Summary columns summarised across runs (``cost_usd``: over the answers whose cost is known).
BENCH_METRICS = ("ttft_s", "ttfo_s", "tpot_s", "e2e_s", "decode_tokens_per_s", "e2e_tokens_per_s",
                 "icl_p50_s", "icl_p99_s", "output_tokens", "cost_usd")


@dataclass(frozen=True, slots=True)
class Unit:
    """One (prompt, repetition) pair; ``warmup`` units run but are not measured."""

    prompt_index: int
    prompt: str
    run_index: int
    warmup: bool = False

    @property
    def key(self) -> str:
        """A stable file-name key for the unit's Parquet parts."""
        return f"p{self.prompt_index:05d}-r{self.run_index:05d}"


@dataclass(frozen=True)
class BenchResult:
    """The measured runs' rows, and the tables computed from them."""

    summary: pd.DataFrame
    chunks: pd.DataFrame | None
    percentiles: pd.DataFrame
    goodput: pd.DataFrame | None
    out: Path | None

    @property
    def answers(self) -> pd.DataFrame:
        """The answers as a table: prompts down (and runs, when there are several), models across."""
        return answers(self.summary)

    def __repr__(self) -> str:
        runs = self.summary["run_id"].nunique() if len(self.summary) else 0
        return f"<BenchResult {runs} runs, {len(self.summary)} requests{f', in {self.out}' if self.out else ''}>"


def _done_units(out: Path) -> set[str]:
    return {p.stem.removeprefix("part-") for p in (out / "summary").glob("part-*.parquet")}


def _write_unit(out: Path, unit: Unit, grid: Grid) -> pd.DataFrame:
    summary = _with_unit(grid.summary, unit)
    chunks = _with_unit(grid.chunks, unit)
    for name, frame in (("chunks", chunks), ("summary", summary)):  # summary last: it marks the unit done
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".part-{unit.key}.tmp"
        frame.to_parquet(tmp, index=False)
        tmp.replace(folder / f"part-{unit.key}.parquet")
    return summary


def _read_units(folder: Path, keys: set[str]) -> pd.DataFrame:
    """The summary rows of ``keys``, from their own part files only: a partition of a large sweep
    on shared storage reads what it ran (or had run before), not the whole dataset."""
    import pandas as pd
    import pyarrow.dataset as ds

    files = [str(folder / f"part-{key}.parquet") for key in sorted(keys) if (folder / f"part-{key}.parquet").exists()]
    if not files:
        return pd.DataFrame()
    return ds.dataset(files, format="parquet").to_table().to_pandas().reset_index(drop=True)


def _with_unit(frame: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    frame = frame.copy()
    frame.insert(1, "prompt_index", unit.prompt_index)
    frame.insert(2, "run_index", unit.run_index)
    frame.insert(3, "prompt", unit.prompt)
    return frame


def sweep(units: Sequence[Unit], models: Sequence[str | Source], *, concurrency: int = 1,
          out: str | Path | None = None, keep_chunks: bool = True, progress: bool = False,
          **options: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Run ``units`` (at most ``concurrency`` at once); return (summary, chunks) of measured units.

    With ``out``, finished units are appended to the Parquet dataset there as they finish,
    units already present are skipped (resume), and chunks are not kept in memory.
    """
    import pandas as pd

    from .api import RUN_DEFAULTS, _plan, _start
    from .conversation import check_messages

    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    unknown = set(options) - set(RUN_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected option(s): {', '.join(sorted(unknown))}")
    out_dir = Path(out).expanduser() if out is not None else None
    done = _done_units(out_dir) if out_dir is not None else set()
    todo = [u for u in units if u.warmup or u.key not in done]
    settings = {**RUN_DEFAULTS, **options, "widget": False}
    check_messages(settings["messages"])  # a bad history is refused before the first unit runs
    if settings["budget_usd"] is not None:  # every prompt within budget before any request is sent
        for prompt in dict.fromkeys(u.prompt for u in todo):
            _plan(prompt, models, **settings)
    summaries: list[pd.DataFrame] = []
    chunks: list[pd.DataFrame] = []
    bar = _progress(len(todo)) if progress else None

    def finish(unit: Unit, grid: Grid) -> None:
        if not unit.warmup:
            if out_dir is not None:
                summaries.append(_write_unit(out_dir, unit, grid))
            else:
                summaries.append(_with_unit(grid.summary, unit))
                if keep_chunks:
                    chunks.append(_with_unit(grid.chunks, unit))
        if bar is not None:
            bar.update(1)

    pending: dict[concurrent.futures.Future[None], tuple[Unit, Grid]] = {}
    queue = list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < concurrency:
                unit = queue.pop(0)
                grid = _start(unit.prompt, models, **settings, stoppable=True, record=False)
                pending[grid._future] = (unit, grid)
            finished, _ = concurrent.futures.wait(list(pending), return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in finished:
                finish(*pending.pop(fut))
    except KeyboardInterrupt:
        for _, grid in pending.values():
            grid.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    if out_dir is not None and (out_dir / "summary").exists():
        return _read_units(out_dir / "summary", {u.key for u in units if not u.warmup}), None
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    return summary, (pd.concat(chunks, ignore_index=True) if chunks else None)


def _progress(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety
        return None
    return tqdm(total=total, desc="llmgrid bench", unit="run")


def percentiles(summary: pd.DataFrame, metrics: Sequence[str] = BENCH_METRICS) -> pd.DataFrame:
    """Per source and metric: n, mean, std, p50, p90, p95, p99 over the measured runs."""
    import pandas as pd

    cols = [m for m in metrics if m in summary.columns]
    rows = []
    for source, group in summary.groupby("source", sort=False):
        for metric in cols:
            values = pd.to_numeric(group[metric], errors="coerce").dropna().astype(float)
            q = values.quantile([0.5, 0.9, 0.95, 0.99]) if len(values) else pd.Series([float("nan")] * 4)
            rows.append({"source": source, "metric": metric, "n": len(values), "mean": values.mean(),
                         "std": values.std(), "p50": q.iloc[0], "p90": q.iloc[1], "p95": q.iloc[2],
                         "p99": q.iloc[3]})
    return pd.DataFrame(rows).set_index(["source", "metric"])


def answers(summary: pd.DataFrame) -> pd.DataFrame:
    """A wide table of answer texts: one row per prompt (index ``prompt``, plus ``run`` when a
    prompt ran more than once), one column per source in the order given, each cell that run's
    answer (partial after a failure; NA where a sweep has no row)."""
    import pandas as pd

    if summary.empty or "prompt" not in summary.columns:
        return pd.DataFrame(index=pd.Index([], name="prompt", dtype="string"), dtype="string")
    frame = summary.assign(text=summary["text"] if "text" in summary.columns else pd.NA)
    by_run = frame.groupby("prompt_index")["run_index"].nunique().max() > 1
    keys = ["prompt_index", "prompt", "run_index"] if by_run else ["prompt_index", "prompt"]
    table = frame.pivot_table(index=keys, columns="source", values="text", aggfunc="first", sort=True)
    table = table.reindex(columns=list(dict.fromkeys(frame["source"])))
    table.index = table.index.droplevel("prompt_index")
    if by_run:
        table.index = table.index.rename(["prompt", "run"])
    table.columns.name = "source"
    return table.astype("string")


def goodput(summary: pd.DataFrame, *, ttft_s: float | None = None, tpot_s: float | None = None,
            duration_s: float | None = None) -> pd.DataFrame:
    """Per source: requests meeting every SLO given (TTFT and TPOT, as vLLM and genai-perf define
    goodput), their share, and good requests per second over ``duration_s`` when given."""
    import pandas as pd

    good = summary["status"] == "done"
    if ttft_s is not None:
        good &= summary["ttft_s"] <= ttft_s
    if tpot_s is not None:
        good &= summary["tpot_s"].fillna(0.0) <= tpot_s
    frame = pd.DataFrame({"source": summary["source"], "good": good.fillna(False)})
    table = frame.groupby("source", sort=False)["good"].agg(requests="size", good="sum")
    table["goodput_ratio"] = table["good"] / table["requests"]
    if duration_s:
        table["goodput_req_per_s"] = table["good"] / duration_s
    return table


def bench(prompts: str | Sequence[str], models: Sequence[str | Source], *, runs: int = 5,
          concurrency: int = 1, warmup: int = 1, slo_ttft_s: float | None = None,
          slo_tpot_s: float | None = None, out: str | Path | None = None, progress: bool = True,
          **options: Any) -> BenchResult:
    """Run every prompt ``runs`` times against ``models`` (``concurrency`` runs at once).

    ``warmup`` runs per prompt go first and are excluded. Returns the measured rows plus
    ``percentiles`` (p50/p90/p95/p99, mean, std per source and metric, ``cost_usd`` among them),
    ``answers`` (prompts x models) and, with SLOs, ``goodput``. With ``out``, rows stream to a
    Parquet dataset and a re-run resumes. ``messages=`` (a chat history, as for ``run``) goes
    before every prompt: each run is turn 1 of a conversation of its own.
    """
    import time

    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompt_list or runs < 1 or warmup < 0:
        raise ConfigError("bench needs at least one prompt, runs >= 1 and warmup >= 0")
    units = [Unit(i, p, r, warmup=r < warmup) for i, p in enumerate(prompt_list) for r in range(warmup + runs)]
    t = time.monotonic()
    summary, chunks = sweep(units, models, concurrency=concurrency, out=out, progress=progress, **options)
    elapsed = time.monotonic() - t
    table = percentiles(summary) if len(summary) else percentiles(summary.assign(source=[]))
    good = goodput(summary, ttft_s=slo_ttft_s, tpot_s=slo_tpot_s, duration_s=elapsed) \
        if (slo_ttft_s is not None or slo_tpot_s is not None) and len(summary) else None
    return BenchResult(summary, chunks, table, good, Path(out).expanduser() if out is not None else None)
