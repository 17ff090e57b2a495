"""The Brave aggregator's memory bound and stage timings, on the simulator's emulator.

20 results whose pages are ~200 KB each, all 20 fetched and extracted: the seeds' bound is
< 100 MB for the aggregator. Prints RSS growth (after a warm-up run), time to the first status
and first result, and the pipeline's stage times.

    python benchmarks/bench_aggregator.py
"""

from __future__ import annotations

import gc
import os
import time

import psutil

import llmgrid_nb as lg
from llmgrid_nb.events import Progress


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    proc = psutil.Process()
    synth = "sim/fast?tokens=200&rate=2000"
    lg.run("warm up", ["sim/instant?tokens=5"], brave=lg.Brave(count=3, top_k=3, synthesis_model=synth), widget=False)
    gc.collect()
    rss0 = proc.memory_info().rss
    peak = rss0
    brave = lg.Brave(count=20, top_k=20, params={"sim_pages": "big"}, cache=False, per_host=8,
                     synthesis_model=synth, max_page_bytes=400_000)
    grid = lg.start("How do SSE reconnects work?", ["sim/instant?tokens=5"], brave=brave, widget=False)
    while not grid.done:
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.01)
    gc.collect()
    rss1 = proc.memory_info().rss
    events = [e for e in grid.events if e.source == "brave"]
    t0 = next(e.t_s for e in events if e.kind == "status")
    first_status = next(e.t_s for e in events if isinstance(e, Progress)) - t0
    first_result = next(e.t_s for e in events if e.kind == "search_result") - t0
    stages = {e.stage: round(e.t_s - t0, 3) for e in events if isinstance(e, Progress)}
    pages = [e for e in events if isinstance(e, Progress) and e.stage == "batch_complete"][-1]
    row = grid.summary.set_index("source").loc["brave"]
    print("## Aggregator: 20 results, 20 pages of ~200 KB fetched and extracted")
    print(f"- status {row.status}; pages ok {pages.metrics['pages_ok']:.0f}, failed {pages.metrics['pages_failed']:.0f}")
    print(f"- RSS growth during the run: peak +{(peak - rss0) / 2**20:.1f} MB, after +{(rss1 - rss0) / 2**20:.1f} MB"
          " (bound: < 100 MB)")
    print(f"- first status {first_status * 1000:.1f} ms, first search result {first_result * 1000:.1f} ms after start")
    print(f"- stage times (s from start): {stages}")
    print(f"- synthesis: TTFT {row.ttft_s:.3f} s from the pipeline's start, {row.output_tokens} tokens")


if __name__ == "__main__":
    main()
