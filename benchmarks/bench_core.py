"""Core benchmark: our direct path and the LiteLLM route against raw httpx, in one process.

Prints CPU per 1,000 chunks and chunks/s for each path as ratios to a raw httpx loop measured
in the same run on the same simulator stream (OpenAI chat, then each native dialect: Anthropic,
Gemini, the Responses API, each also through its ``litellm:`` route), aggregate throughput of 100 concurrent streams,
``import llmgrid_nb`` time and memory for 8 x 10,000 tokens. Not a test: figures, not verdicts.

    python benchmarks/bench_core.py [--chunks 20000] [--litellm-chunks 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from urllib.parse import quote

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402

import llmgrid_nb as lg  # noqa: E402
from llmgrid_nb.sim import start_simulator  # noqa: E402


async def raw_httpx(base: str, model: str) -> int:
    """The baseline: httpx aiter_lines + json.loads, nothing else."""
    n = 0
    body = {"model": model, "messages": [{"role": "user", "content": "Explain SSE"}], "stream": True}
    async with httpx.AsyncClient(timeout=None) as client:
        async with client.stream("POST", base + "/chat/completions", json=body) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    obj = json.loads(line[6:])
                    if obj.get("choices") and obj["choices"][0]["delta"].get("content"):
                        n += 1
    return n


def _anthropic_content(obj: dict) -> bool:
    return obj.get("type") == "content_block_delta" and obj["delta"].get("type") == "text_delta"


def _gemini_content(obj: dict) -> bool:
    return any("text" in p for c in obj.get("candidates") or () for p in (c.get("content") or {}).get("parts") or ())


def _responses_content(obj: dict) -> bool:
    return obj.get("type") == "response.output_text.delta"


#: Per dialect: (path under the simulator, request body, "is this a content chunk").
DIALECTS = {
    "anthropic": ("/v1/messages", lambda m: {"model": m, "max_tokens": 10**6, "stream": True,
                                             "messages": [{"role": "user", "content": "Explain SSE"}]},
                  _anthropic_content),
    "gemini": (None, lambda m: {"contents": [{"role": "user", "parts": [{"text": "Explain SSE"}]}]},
               _gemini_content),
    "responses": ("/v1/responses", lambda m: {"model": m, "input": "Explain SSE", "stream": True},
                  _responses_content),
}


async def raw_dialect(url: str, api: str, model: str) -> int:
    """The baseline in another dialect: httpx aiter_lines + json.loads of its data lines."""
    path, body, is_content = DIALECTS[api]
    if path is None:
        path = f"/v1beta/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"
    n = 0
    async with httpx.AsyncClient(timeout=None) as client:
        async with client.stream("POST", url + path, json=body(model)) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    if is_content(json.loads(line[6:])):
                        n += 1
    return n


def dialect_rows(url: str, chunks: int, litellm_chunks: int) -> None:
    """Each native dialect against raw httpx on the same simulator stream, and its LiteLLM route."""
    print(f"\n## Per-chunk cost by dialect (one stream, {chunks:,} chunks; LiteLLM {litellm_chunks:,})")
    print("| dialect | path | CPU ms / 1,000 chunks | x raw httpx |")
    print("|---|---|---:|---:|")
    for api in DIALECTS:
        model = f"instant?tokens={chunks}&seed=1&api={api}"
        lg.run("warm up", [f"sim/{model}"])
        cpu_raw, _, n_raw = best_of(3, lambda: asyncio.run(raw_dialect(url, api, model)))
        raw_k = cpu_raw / n_raw * 1e6  # type: ignore[operator]
        cpu_dir, _, grid = best_of(3, lambda: lg.run("Explain SSE", [f"sim/{model}"]))
        row = grid.summary.iloc[0]  # type: ignore[attr-defined]
        dk = cpu_dir / int(row.n_chunks) * 1e6
        print(f"| {api} | raw httpx aiter_lines + json.loads | {raw_k:.1f} | 1.00 |")
        print(f"| {api} | llmgrid native ({row.route}, {row.status}) | {dk:.1f} | {dk / raw_k:.2f} |")
        lmodel = f"instant?tokens={litellm_chunks}&seed=1&api={api}"
        cpu_raw_l, _, n_raw_l = best_of(3, lambda: asyncio.run(raw_dialect(url, api, lmodel)))
        raw_kl = cpu_raw_l / n_raw_l * 1e6  # type: ignore[operator]
        lg.run("warm up", [f"litellm:sim/{lmodel}"])
        cpu_lit, _, lgrid = best_of(2, lambda: lg.run("Explain SSE", [f"litellm:sim/{lmodel}"]))
        lrow = lgrid.summary.iloc[0]  # type: ignore[attr-defined]
        if lrow.status == "done" and int(lrow.n_chunks):
            lk = cpu_lit / int(lrow.n_chunks) * 1e6
            print(f"| {api} | LiteLLM route | {lk:.1f} | {lk / raw_kl:.2f} |")
        else:
            print(f"| {api} | LiteLLM route | failed: {str(lrow.error)[:90]} | — |")


def measure(fn) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    """(cpu seconds of this whole process, wall seconds, result)."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result


def best_of(k: int, fn):  # type: ignore[no-untyped-def]
    runs = [measure(fn) for _ in range(k)]
    return min(runs, key=lambda r: r[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=20000)
    ap.add_argument("--litellm-chunks", type=int, default=4000)
    ap.add_argument("--streams", type=int, default=100)
    args = ap.parse_args()

    sim = start_simulator()
    os.environ["LLMGRID_SIM_URL"] = sim.url
    try:
        base = sim.openai_base
        model = f"instant?tokens={args.chunks}&seed=1"
        lg.run("warm up", [f"sim/{model}"])  # engine, pool, connection
        asyncio.run(raw_httpx(base, model))

        cpu_raw, wall_raw, n_raw = best_of(3, lambda: asyncio.run(raw_httpx(base, model)))
        cpu_dir, wall_dir, grid = best_of(3, lambda: lg.run("Explain SSE", [f"sim/{model}"]))
        n_dir = int(grid.summary.n_chunks.iloc[0])  # type: ignore[attr-defined]

        lmodel = f"instant?tokens={args.litellm_chunks}&seed=1"
        lg.run("warm up", [f"litellm:sim/{lmodel}"])
        cpu_lit, wall_lit, lgrid = best_of(2, lambda: lg.run("Explain SSE", [f"litellm:sim/{lmodel}"]))
        n_lit = int(lgrid.summary.n_chunks.iloc[0])  # type: ignore[attr-defined]
        cpu_raw_l, wall_raw_l, n_raw_l = best_of(3, lambda: asyncio.run(raw_httpx(base, lmodel)))

        def per_k(cpu: float, n: int) -> float:
            return cpu / n * 1000 * 1000

        print(f"## Per-chunk cost (one stream, {args.chunks:,} chunks; LiteLLM {args.litellm_chunks:,})")
        print("| path | chunks | CPU ms / 1,000 chunks | x raw httpx | chunks/s | x raw httpx |")
        print("|---|---:|---:|---:|---:|---:|")
        raw_k = per_k(cpu_raw, n_raw)  # type: ignore[arg-type]
        print(f"| raw httpx aiter_lines + json.loads | {n_raw:,} | {raw_k:.1f} | 1.00 | {n_raw / wall_raw:,.0f} | 1.00 |")
        dk = per_k(cpu_dir, n_dir)
        print(f"| llmgrid direct SSE (events + metrics) | {n_dir:,} | {dk:.1f} | {dk / raw_k:.2f} | "
              f"{n_dir / wall_dir:,.0f} | {(n_dir / wall_dir) / (n_raw / wall_raw):.2f} |")
        raw_kl = per_k(cpu_raw_l, n_raw_l)  # type: ignore[arg-type]
        lk = per_k(cpu_lit, n_lit)
        print(f"| llmgrid LiteLLM route | {n_lit:,} | {lk:.1f} | {lk / raw_kl:.2f} | "
              f"{n_lit / wall_lit:,.0f} | {(n_lit / wall_lit) / (n_raw_l / wall_raw_l):.2f} |")

        dialect_rows(sim.url, args.chunks, args.litellm_chunks)

        n_streams, per_stream = args.streams, 500
        models = [f"sim/instant?tokens={per_stream}&seed={i}" for i in range(n_streams)]
        cpu_c, wall_c, cgrid = measure(lambda: lg.run("Explain SSE", models, max_concurrency=n_streams))
        total = int(cgrid.summary.n_chunks.sum())  # type: ignore[attr-defined]
        done = int((cgrid.summary.status == "done").sum())  # type: ignore[attr-defined]
        print(f"\n## {n_streams} concurrent streams x {per_stream} chunks (one simulator process)")
        print(f"- {done}/{n_streams} done, {total:,} chunks in {wall_c:.2f} s: {total / wall_c:,.0f} chunks/s aggregate;"
              f" client CPU {per_k(cpu_c, total):.1f} ms / 1,000 chunks ({per_k(cpu_c, total) / raw_k:.2f} x raw single-stream)")
    finally:
        sim.stop()
        os.environ.pop("LLMGRID_SIM_URL", None)

    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); import llmgrid_nb;"
                              " print(time.perf_counter()-t)"], capture_output=True, text=True, check=True)
        times.append(float(out.stdout))
    print(f"\n## import llmgrid_nb: median {statistics.median(times) * 1000:.0f} ms over 5 fresh processes")

    mem = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import gc, psutil, llmgrid_nb as lg
        w = lg.run('warm', ['sim/instant?tokens=50']); w.chunks; w.summary
        gc.collect(); base = psutil.Process().memory_info().rss
        g = lg.run('Explain SSE', [f'sim/instant?tokens=10000&seed={i}' for i in range(8)])
        gc.collect(); after = psutil.Process().memory_info().rss
        g.chunks; g.summary
        gc.collect(); frames = psutil.Process().memory_info().rss
        print((after - base) / 2**20, (frames - base) / 2**20, int(g.summary.n_chunks.sum()))
    """)], capture_output=True, text=True, check=True)
    grown, with_frames, n = mem.stdout.split()
    print(f"## memory for 8 x 10,000 tokens ({int(n):,} chunks): +{float(grown):.1f} MB RSS after the run"
          f" (events + columns kept), +{float(with_frames):.1f} MB with the DataFrames built"
          " (baseline: after import, one warm-up run and pandas loaded)")


if __name__ == "__main__":
    main()
