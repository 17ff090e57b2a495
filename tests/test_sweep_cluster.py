"""Sweeps as a cluster runs them: partitions in separate worker processes, one Parquet dataset.

``tests/test_bench.py`` runs a partition under Dask's threads scheduler; here every worker is a
process of its own (its own engine thread, its own simulator), as on a real cluster, and the
README's recipe runs as a pasted script under dask.bag's default process scheduler.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from itertools import cycle
from pathlib import Path

import pandas as pd
import pytest

import llmgrid_nb
from llmgrid_nb.bench import Unit, answers, sweep

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["sim/fast?tokens=10", "sim/steady?tokens=10&rate=300&ttft=0.05"]
#: What every worker process needs so that nothing in it reaches for the network.
WORKER_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _child_env() -> dict[str, str]:
    """This environment, plus the llmgrid_nb under test first on the path and no network."""
    env = {**os.environ, **WORKER_ENV}
    package_parent = str(Path(llmgrid_nb.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def test_partitions_in_separate_worker_processes_write_one_dataset(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")

    prompts = ["Explain SSE", "What is TCP slow start?", "Name a prime"]
    units = [Unit(i, p, r) for i, p in enumerate(prompts) for r in range(2)]
    partitions = [units[i::4] for i in range(4)]
    out = tmp_path / "sweep"

    def run_partition(part: list[Unit]) -> tuple[int, bool, str | None, str, pd.DataFrame]:
        from llmgrid_nb.sim import default_simulator

        summary, _ = sweep(part, MODELS, out=out)
        engine_alive = any(t.name == "llmgrid-engine" and t.is_alive() for t in threading.enumerate())
        return (os.getpid(), engine_alive, os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
                default_simulator().url, summary)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None,
                                  env=WORKER_ENV) as cluster, distributed.Client(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        assert len(workers) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in workers)
        futures = [client.submit(run_partition, part, workers=[worker], pure=False)
                   for part, worker in zip(partitions, cycle(workers))]
        results = client.gather(futures)

    pids = {pid for pid, *_ in results}
    assert len(pids) == 2 and os.getpid() not in pids, "two worker processes, neither of them this one"
    assert all(alive for _, alive, *_ in results), "each worker runs its own engine thread"
    assert {env for _, _, env, *_ in results} == {"True"}, "no worker may fetch litellm's price map"
    assert len({url for *_, url, _ in results}) == 2, "each worker started its own simulator"
    returned = pd.concat([summary for *_, summary in results], ignore_index=True)
    assert len(returned) == len(units) * len(MODELS), "each partition returns its own rows, picklable"

    summary = pd.read_parquet(out / "summary")
    keys = summary[["prompt_index", "run_index", "source"]]
    assert not keys.duplicated().any()
    expected = {(u.prompt_index, u.run_index, m) for u in units for m in MODELS}
    assert set(keys.itertuples(index=False, name=None)) == expected, "one row per (unit, model)"
    assert summary.groupby(["prompt_index", "run_index"]).run_id.nunique().eq(1).all()
    assert summary.run_id.nunique() == len(units), "run ids are distinct across worker processes"
    assert (summary.status == "done").all() and summary.error.isna().all()
    assert summary.text.notna().all() and (summary.text.str.len() > 0).all()
    assert set(returned.run_id) == set(summary.run_id)
    table = answers(summary)
    assert list(table.columns) == MODELS and table.notna().all().all() and len(table) == len(units)
    chunks = pd.read_parquet(out / "chunks")
    assert set(chunks.run_id) == set(summary.run_id)
    assert not list(out.rglob(".part-*")), "no half-written parts"


def readme_sweep_recipe() -> str:
    """The Python block of the README's "Sweeps beyond one machine" section, verbatim."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Sweeps beyond one machine", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's sweep section has a python block"
    return match.group(1)


def test_readme_sweep_recipe_runs_as_a_script(tmp_path: Path) -> None:
    pytest.importorskip("dask.bag")

    recipe = readme_sweep_recipe()
    assert 'if __name__ == "__main__":' in recipe, "dask.bag's process scheduler re-imports the script"
    script = tmp_path / "sweep_script.py"
    script.write_text(recipe)
    proc = subprocess.run([sys.executable, str(script)], check=False, cwd=tmp_path, env=_child_env(),
                          capture_output=True, text=True, timeout=110, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = pd.read_parquet(tmp_path / "sweep" / "summary")
    assert len(summary) and (summary.status == "done").all() and summary.text.notna().all()
    assert not summary[["prompt_index", "run_index", "source"]].duplicated().any()
    assert "sim/fast" in proc.stdout, "the recipe prints what it read back"
