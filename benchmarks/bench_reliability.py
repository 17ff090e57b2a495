"""Reliability figures: recovery rate on the flaky profile (with and without resume) and a soak.

- Recovery: >= 1,000 requests to ``sim/flaky`` (about 40% of requests fail: 500, 429, reset
  mid-stream, stall, malformed line), 100 at a time. A request counts as recovered when its
  final text equals the answer the simulator gives that seed without faults.
- Soak: 1,000 streams, 100 concurrent, each with a random fault from the matrix (or none);
  RSS after the first and the last hundred, tasks left on the engine loop, file descriptors.

    python benchmarks/bench_reliability.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import time

import psutil

import llmgrid_nb as lg
from llmgrid_nb.engine import get_engine

PROMPT = "How do SSE reconnects work?"
#: flaky fails ~40% of requests independently, so k retries leave ~0.4**(k+1) failing before any token.
RETRIES = 5
FAULTS = ["", "", "", "fault=http_500", "fault=http_429&retry_after=0.1", "fault=reset&after=8",
          "fault=stall&after=5&stall_s=2", "fault=malformed&after=4", "fault=error_chunk&after=6",
          "fault=no_done", "fault=http_401", "fault=invalid_utf8&after=3", "fault=html"]


def engine_tasks() -> int:
    async def count() -> int:
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    return get_engine().submit(count()).result(5)


def recovery(n: int, resume: bool, first_seed: int) -> tuple[float, int, int, float]:
    """(share recovered, requests, internal errors, seconds); seeds from ``first_seed``, unused so far."""
    ok = internal = 0
    t = time.perf_counter()
    for start in range(first_seed, first_seed + n, 100):
        seeds = range(start, min(first_seed + n, start + 100))
        reference = lg.run(PROMPT, [f"sim/instant?tokens=40&seed={s}" for s in seeds], max_concurrency=100).texts
        models = [f"sim/flaky?tokens=40&rate=800&ttft=0.01&seed={s}&stall_s=1" for s in seeds]
        grid = lg.run(PROMPT, models, retries=RETRIES, stall_timeout=0.3, resume=resume, max_concurrency=100)
        for s, m in zip(seeds, models):
            ok += grid.texts[m] == reference[f"sim/instant?tokens=40&seed={s}"] and grid.statuses[m] == "done"
        internal += int((grid.summary.error_type == "internal").sum())
    return ok / n, n, internal, time.perf_counter() - t


def soak(n: int) -> None:
    rng = random.Random(1)
    proc = psutil.Process()
    lg.run(PROMPT, ["sim/fast?tokens=20"] * 4)
    fds0 = proc.num_fds()
    rss: list[float] = []
    escaped = 0
    statuses: dict[str, int] = {}
    t = time.perf_counter()
    for batch in range(n // 100):
        models = []
        for i in range(100):
            fault = rng.choice(FAULTS)
            models.append(f"sim/fast?tokens=30&rate=600&seed={batch * 100 + i}" + (f"&{fault}" if fault else ""))
        try:
            grid = lg.run(PROMPT, models, retries=1, stall_timeout=0.5, max_concurrency=100)
            for s in grid.statuses.values():
                statuses[s] = statuses.get(s, 0) + 1
        except Exception:  # counted: nothing may escape to the user's cell
            escaped += 1
        del grid
        gc.collect()
        rss.append(proc.memory_info().rss / 2**20)
    print(f"## Soak: {n} streams, 100 concurrent, random faults ({time.perf_counter() - t:.1f} s)")
    print(f"- statuses: {statuses}; exceptions escaping lg.run: {escaped}")
    print(f"- RSS after the first hundred {rss[0]:.1f} MB, after the last {rss[-1]:.1f} MB: "
          f"growth {rss[-1] - rss[0]:+.1f} MB (history keeps every run's rows; see below)")
    print(f"- tasks left on the engine loop: {engine_tasks()}; file descriptors {fds0} -> {proc.num_fds()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    print(f"## Recovery on sim/flaky ({args.requests} requests, 100 concurrent, retries={RETRIES})")
    print("| resume | recovered (complete and correct) | internal errors | seconds |")
    print("|---|---:|---:|---:|")
    for i, resume in enumerate((False, True)):
        share, n, internal, secs = recovery(args.requests, resume, first_seed=i * 100_000)
        print(f"| {resume} | {share:.1%} of {n} | {internal} | {secs:.1f} |")
    soak(args.requests)


if __name__ == "__main__":
    main()
