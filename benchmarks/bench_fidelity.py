"""Measurement fidelity: our recorded arrival time of every chunk against the simulator's send
log (CLOCK_MONOTONIC, shared by processes on one Linux host), at 1 to 1,000 concurrent streams,
on the direct path, with the widget sink attached, and through LiteLLM.

For each configuration it prints arrival - send (median, p99), the relative error of TTFT and
TPOT against the values computed from the send log, client CPU per 1,000 chunks as a ratio to a
raw httpx loop measured in the same run, and memory per stream.

On plain HTTP (the simulator here) a chunk's arrival time is the kernel's receive stamp
(``llmgrid_nb/rx_stamps.py``). The rows marked "loop read time" turn that off
(``LLMGRID_KERNEL_TIMESTAMPS=0``) and stamp chunks when the engine loop reads them, as TLS
connections and LiteLLM still do: how far that lags is what the kernel stamps take out of the
measurement (and how late the live display can be).

    python benchmarks/bench_fidelity.py [--quick] [--only LABEL] [--streams N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
from typing import Any

import httpx
import numpy as np
import psutil

import llmgrid_nb as lg
from llmgrid_nb.sim import start_simulator
from llmgrid_nb.widget import GridWidget, WidgetSink

PROMPT = "How do SSE reconnects work?"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def _raw_many(bases: list[str], models: list[str], arrivals: list | None = None) -> int:
    """Stream every model with a bare httpx client; count content chunks. With ``arrivals``, also
    collect (simulator base, request id, monotonic arrival time of each content chunk)."""
    async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=None)) as client:
        async def one(base: str, model: str) -> int:
            times: list[float] = []
            body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
            async with client.stream("POST", base + "/chat/completions", json=body) as resp:
                async for line in resp.aiter_lines():
                    now = time.monotonic()
                    if line.startswith("data: ") and line != "data: [DONE]":
                        obj = json.loads(line[6:])
                        if obj.get("choices") and obj["choices"][0]["delta"].get("content"):
                            times.append(now)
            if arrivals is not None:
                arrivals.append((base, resp.headers.get("x-sim-request-id"), times))
            return len(times)

        return sum(await asyncio.gather(*(one(b, m) for b, m in zip(bases, models))))


def raw_same_workload(sims: list, streams: int, rate: float, tokens: int) -> tuple[float, np.ndarray]:
    """A bare httpx client running exactly this configuration's streams: its CPU per 1,000 chunks
    and its own arrival - send lags (ms), the floor that this machine's load sets for any client."""
    models = [f"steady?tokens={tokens}&rate={rate}&jitter=0.05&ttft=0.2&seed={i}" for i in range(streams)]
    bases = [sims[i % len(sims)].openai_base for i in range(streams)]
    arrivals: list = []
    c = time.process_time()
    n = asyncio.run(_raw_many(bases, models, arrivals))
    cpu_k = (time.process_time() - c) / max(n, 1) * 1e6
    lags = []
    with httpx.Client() as client:
        for base, request_id, times in arrivals:
            log = client.get(f"{base.removesuffix('/v1')}/_sim/log/{request_id}").json()
            sends = [t for t, k in zip(log.get("send_times", []), log.get("kinds", [])) if k == "content"]
            if len(sends) == len(times):
                lags.append(np.array(times) - np.array(sends))
    return cpu_k, (np.concatenate(lags) * 1000 if lags else np.array([np.nan]))


def raw_cpu_per_k(base: str) -> float:
    asyncio.run(_raw_many([base], ["instant?tokens=2000"]))
    c = time.process_time()
    n = asyncio.run(_raw_many([base], ["instant?tokens=20000"]))
    return (time.process_time() - c) / n * 1e6


def measure_run(sim_urls: list[str], streams: int, rate: float, tokens: int, *, litellm: bool = False,
                widget: bool = False) -> dict[str, Any]:
    """Run the streams through llmgrid_nb in this process and compare with the send logs.

    Runs as is inside a Jupyter kernel too (``in_kernel``), where ``widget`` displays a real
    GridWidget whose throttled deltas go out over the kernel's iopub channel."""
    sources = []
    for i in range(streams):
        model = f"steady?tokens={tokens}&rate={rate}&jitter=0.05&ttft=0.2&seed={i}"
        base = sim_urls[i % len(sim_urls)] + "/v1"
        if litellm:
            sources.append(lg.LiteLLM(f"openai/{model}", api_base=base, api_key="sim", name=f"s{i}"))
        else:
            sources.append(lg.OpenAICompatible(model, base, name=f"s{i}"))
    sinks = []
    if widget:
        w = GridWidget()
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                display(w)  # in a kernel: the comm is opened and every delta crosses iopub
        except ImportError:
            pass
        sinks = [WidgetSink(w)]
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
            log = client.get(f"{sim_urls[i % len(sim_urls)]}/_sim/log/{row.request_id}").json()
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
    return {
        "done": int((summary.status == "done").sum()),
        "lag_p50_ms": float(np.median(lag)), "lag_p99_ms": float(np.percentile(lag, 99)),
        "ttft_err": float(np.median(ttft_err)) if ttft_err else float("nan"),
        "tpot_err": float(np.median(tpot_err)) if tpot_err else float("nan"),
        "cpu_per_k_ms": cpu / max(n_chunks, 1) * 1e6,
        "rss_per_stream_kb": rss / streams / 1024,
    }


#: Run in a fresh kernel: this file's ``measure_run``, its result printed as one JSON line.
KERNEL_CODE = """
import json, sys
sys.path.insert(0, {bench_dir!r})
import bench_fidelity
# A first run opens the connections (as the warm in-process rows had them), then the measured one.
bench_fidelity.measure_run({urls!r}, {streams}, {rate}, {tokens}, widget=False)
print("RESULT " + json.dumps(bench_fidelity.measure_run({urls!r}, {streams}, {rate}, {tokens}, widget={widget})))
"""


def in_kernel(sim_urls: list[str], streams: int, rate: float, tokens: int, *, widget: bool) -> dict[str, Any]:
    """``measure_run`` inside a real ipykernel, with a client draining iopub as a front end does.

    Returns its result plus how many comm messages and bytes the run put on iopub."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    km, kc = start_new_kernel(kernel_name="python3", env=env, stderr=subprocess.DEVNULL)
    try:
        code = KERNEL_CODE.format(bench_dir=os.path.dirname(os.path.abspath(__file__)), urls=sim_urls,
                                  streams=streams, rate=rate, tokens=tokens, widget=widget)
        msg_id = kc.execute(code)
        result, comm_msgs, comm_bytes, errors = None, 0, 0, []
        # Raw frames, parsing only the small header frames (as jupyter_server's binary websocket
        # protocol passes messages on): deserialising every 20 KB delta in Python here would take
        # CPU from the kernel on this 2-core machine and inflate its figures.
        socket = kc.iopub_channel.socket
        while True:
            if not socket.poll(600_000):
                raise RuntimeError("no message from the kernel for 10 minutes")
            _, frames = kc.session.feed_identities(socket.recv_multipart(copy=True))
            header, parent = json.loads(frames[1]), json.loads(frames[2])
            if parent.get("msg_id") != msg_id:
                continue
            kind = header["msg_type"]
            if kind == "comm_msg":
                comm_msgs += 1
                comm_bytes += sum(len(f) for f in frames[4:])  # content and binary buffers
                continue
            content = json.loads(frames[4])
            if kind == "stream" and "RESULT " in content["text"]:
                result = json.loads(content["text"].split("RESULT ", 1)[1])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if result is None:
            raise RuntimeError(f"the kernel run failed: {errors}")
        return {**result, "comm_msgs": comm_msgs, "comm_kib": comm_bytes / 1024}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def configuration(label: str, sims: list, streams: int, rate: float, tokens: int, *, litellm: bool = False,
                  widget: bool = False, kernel: bool = False, read_time: bool = False) -> str:
    raw_k, raw_lag = raw_same_workload(sims, streams, rate, tokens)
    urls = [s.url for s in sims]
    saved = os.environ.get("LLMGRID_KERNEL_TIMESTAMPS")
    if read_time:  # read by the client pool (in process) and inherited by a kernel
        os.environ["LLMGRID_KERNEL_TIMESTAMPS"] = "0"
    try:
        if kernel:
            r = in_kernel(urls, streams, rate, tokens, widget=widget)
            label += f" ({r['comm_msgs']} comm messages, {r['comm_kib']:.0f} KiB on iopub)"
        else:
            r = measure_run(urls, streams, rate, tokens, litellm=litellm, widget=widget)
    finally:
        if saved is None:
            os.environ.pop("LLMGRID_KERNEL_TIMESTAMPS", None)
        else:
            os.environ["LLMGRID_KERNEL_TIMESTAMPS"] = saved
    k = r["cpu_per_k_ms"]
    return (f"| {label} | {streams} x {rate:g}/s | {r['done']}/{streams} | {r['lag_p50_ms']:.2f} | "
            f"{r['lag_p99_ms']:.2f} | {np.median(raw_lag):.2f} / {np.percentile(raw_lag, 99):.2f} | "
            f"{100 * r['ttft_err']:.2f}% | {100 * r['tpot_err']:.2f}% | {k:.1f} | {raw_k:.1f} | {k / raw_k:.2f}x | "
            f"{r['rss_per_stream_kb']:.0f} KB |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1,000-stream rows and LiteLLM at 100 streams")
    ap.add_argument("--only", help="run only the rows whose label contains this text (e.g. kernel)")
    ap.add_argument("--streams", type=int, help="run only the rows with this many streams")
    args = ap.parse_args()
    sims = [start_simulator(env={"LLMGRID_SIM_BRAVE_RATE": "0"}) for _ in range(3)]
    try:
        raw_k = raw_cpu_per_k(sims[0].openai_base)
        lg.run(PROMPT, [lg.OpenAICompatible("instant?tokens=10", s.openai_base) for s in sims])  # warm pools
        from llmgrid_nb.sources.litellm import import_litellm

        import_litellm()  # litellm's import and first-call set-up, outside every measurement
        print(f"raw httpx, one 20,000-chunk stream: {raw_k:.1f} ms CPU per 1,000 chunks; each row's baseline is a "
              "bare httpx client running exactly that row's streams, measured in the same run\n")
        print("| path | streams | done | arrival-send p50 ms | p99 ms | raw httpx arrival-send p50 / p99 ms |"
              " TTFT err (median) | TPOT err (median) | our CPU ms/1k chunks | raw httpx ms/1k | ratio | memory/stream |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        # The first 100-stream row opens 100 connections at once (a cold pool); the next rows
        # reuse them, so the widget row compares with the warm direct row.
        rows = [("direct", 1, 50, 150, {}), ("direct", 20, 50, 150, {}), ("direct, cold pool", 100, 50, 150, {}),
                ("direct", 100, 50, 150, {}),
                ("direct + widget sink", 100, 50, 150, {"widget": True}),
                ("direct + widget, in a kernel", 20, 50, 150, {"widget": True, "kernel": True}),
                ("direct, in a kernel, no widget", 20, 50, 150, {"kernel": True}),
                ("direct + widget, in a kernel", 100, 50, 150, {"widget": True, "kernel": True}),
                ("direct, in a kernel, no widget", 100, 50, 150, {"kernel": True}),
                ("direct, loop read time", 20, 50, 150, {"read_time": True}),
                ("direct, loop read time", 100, 50, 150, {"read_time": True}),
                ("direct + widget, in a kernel, loop read time", 100, 50, 150,
                 {"widget": True, "kernel": True, "read_time": True}),
                ("direct, in a kernel, no widget, loop read time", 100, 50, 150, {"kernel": True, "read_time": True}),
                ("LiteLLM", 1, 50, 150, {"litellm": True}), ("LiteLLM", 20, 50, 150, {"litellm": True})]
        if not args.quick:
            rows += [("LiteLLM", 100, 50, 150, {"litellm": True}), ("direct", 1000, 5, 30, {}),
                     ("direct, loop read time", 1000, 5, 30, {"read_time": True}),
                     ("LiteLLM", 1000, 5, 30, {"litellm": True})]
        for label, n, rate, tokens, kw in rows:
            if (args.only and args.only not in label) or (args.streams and args.streams != n):
                continue
            print(configuration(label, sims, n, rate, tokens, **kw), flush=True)
    finally:
        for s in sims:
            s.stop()


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
