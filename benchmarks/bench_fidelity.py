"""Measurement fidelity: our recorded arrival time of every chunk against the simulator's send
log (CLOCK_MONOTONIC, shared by processes on one Linux host), at 1 to 1,000 concurrent streams,
on the direct path, with the widget sink attached, and through LiteLLM.

For each configuration it prints arrival - send (median, p99), the relative error of TTFT and
TPOT against the values computed from the send log, client CPU per 1,000 chunks as a ratio to a
raw httpx loop measured in the same run, and memory per stream.

    python benchmarks/bench_fidelity.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import httpx
import numpy as np
import psutil

import llmgrid_nb as lg
from llmgrid_nb.sim import start_simulator
from llmgrid_nb.widget import GridWidget, WidgetSink

PROMPT = "How do SSE reconnects work?"


async def _raw_many(bases: list[str], models: list[str]) -> int:
    async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=None)) as client:
        async def one(base: str, model: str) -> int:
            n = 0
            body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
            async with client.stream("POST", base + "/chat/completions", json=body) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        obj = json.loads(line[6:])
                        n += bool(obj.get("choices") and obj["choices"][0]["delta"].get("content"))
            return n

        return sum(await asyncio.gather(*(one(b, m) for b, m in zip(bases, models))))


def raw_same_workload(sims: list, streams: int, rate: float, tokens: int) -> float:
    """CPU per 1,000 chunks of a bare httpx client running exactly this configuration's streams."""
    models = [f"steady?tokens={tokens}&rate={rate}&jitter=0.05&ttft=0.2&seed={i}" for i in range(streams)]
    bases = [sims[i % len(sims)].openai_base for i in range(streams)]
    c = time.process_time()
    n = asyncio.run(_raw_many(bases, models))
    return (time.process_time() - c) / max(n, 1) * 1e6


def raw_cpu_per_k(base: str) -> float:
    asyncio.run(_raw_many([base], ["instant?tokens=2000"]))
    c = time.process_time()
    n = asyncio.run(_raw_many([base], ["instant?tokens=20000"]))
    return (time.process_time() - c) / n * 1e6


def configuration(label: str, sims: list, streams: int, rate: float, tokens: int, *, litellm: bool = False,
                  widget: bool = False) -> str:
    raw_k = raw_same_workload(sims, streams, rate, tokens)
    sources = []
    for i in range(streams):
        model = f"steady?tokens={tokens}&rate={rate}&jitter=0.05&ttft=0.2&seed={i}"
        base = sims[i % len(sims)].openai_base
        if litellm:
            sources.append(lg.LiteLLM(f"openai/{model}", api_base=base, api_key="sim", name=f"s{i}"))
        else:
            sources.append(lg.OpenAICompatible(model, base, name=f"s{i}"))
    sinks = [WidgetSink(GridWidget())] if widget else []
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    cpu0 = time.process_time()
    grid = lg.run(PROMPT, sources, sinks=sinks, widget=False, max_concurrency=streams, timeout=600,
                  first_token_timeout=120, stall_timeout=60)
    cpu = time.process_time() - cpu0
    rss = proc.memory_info().rss - rss0
    summary = grid.summary.set_index("source")
    chunks = grid.chunks[grid.chunks.kind == "token"]
    lags, ttft_err, tpot_err = [], [], []
    with httpx.Client() as client:
        for i, name in enumerate(grid.sources):
            row = summary.loc[name]
            if row.status != "done":
                continue
            log = client.get(f"{sims[i % len(sims)].url}/_sim/log/{row.request_id}").json()
            if "send_times" not in log:
                continue
            sends = np.array([t for t, k in zip(log["send_times"], log["kinds"]) if k == "content"])
            arrivals = grid.t0_monotonic + chunks[chunks.source == name].t_s.to_numpy()
            if len(sends) != len(arrivals):
                continue
            lags.append(arrivals - sends)
            t_req = grid.t0_monotonic + row.t_request_s
            ttft_true = sends[0] - t_req
            tpot_true = (sends[-1] - sends[0]) / (len(sends) - 1)
            ttft_err.append(abs(row.ttft_s - ttft_true) / ttft_true)
            tpot_err.append(abs(row.tpot_s - tpot_true) / tpot_true)
    lag = np.concatenate(lags) * 1000 if lags else np.array([np.nan])
    n_chunks = int(summary.n_chunks.sum())
    done = int((summary.status == "done").sum())
    k = cpu / max(n_chunks, 1) * 1e6
    return (f"| {label} | {streams} x {rate:g}/s | {done}/{streams} | {np.median(lag):.2f} | {np.percentile(lag, 99):.2f} | "
            f"{100 * np.median(ttft_err):.2f}% | {100 * np.median(tpot_err):.2f}% | {k:.1f} | {raw_k:.1f} | {k / raw_k:.2f}x | "
            f"{rss / streams / 1024:.0f} KB |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1,000-stream and LiteLLM 100-stream rows")
    args = ap.parse_args()
    sims = [start_simulator(env={"LLMGRID_SIM_BRAVE_RATE": "0"}) for _ in range(3)]
    try:
        raw_k = raw_cpu_per_k(sims[0].openai_base)
        lg.run(PROMPT, [lg.OpenAICompatible("instant?tokens=10", s.openai_base) for s in sims])  # warm pools
        from llmgrid_nb.sources.litellm import import_litellm

        import_litellm()  # litellm's import and first-call set-up, outside every measurement
        print(f"raw httpx, one 20,000-chunk stream: {raw_k:.1f} ms CPU per 1,000 chunks; each row's baseline is a "
              "bare httpx client running exactly that row's streams, measured in the same run\n")
        print("| path | streams | done | arrival-send p50 ms | p99 ms | TTFT err (median) | TPOT err (median) |"
              " our CPU ms/1k chunks | raw httpx ms/1k | ratio | memory/stream |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        # The first 100-stream row opens 100 connections at once (a cold pool); the next rows
        # reuse them, so the widget row compares with the warm direct row.
        rows = [("direct", 1, 50, 150, {}), ("direct", 20, 50, 150, {}), ("direct, cold pool", 100, 50, 150, {}),
                ("direct", 100, 50, 150, {}),
                ("direct + widget sink", 100, 50, 150, {"widget": True}),
                ("LiteLLM", 1, 50, 150, {"litellm": True}), ("LiteLLM", 20, 50, 150, {"litellm": True})]
        if not args.quick:
            rows += [("LiteLLM", 100, 50, 150, {"litellm": True}), ("direct", 1000, 5, 30, {})]
        for label, n, rate, tokens, kw in rows:
            print(configuration(label, sims, n, rate, tokens, **kw), flush=True)
    finally:
        for s in sims:
            s.stop()


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
