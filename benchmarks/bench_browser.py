"""Browser benchmark: the grid under load in real JupyterLab and headless Chromium.

Eight panes stream 200 tokens/s each for 20 s from the simulator through ``%llmgrid``. Measured
in the browser: how many delta messages per second reach it over the kernel websocket (the sink
throttles to ~30/s per grid), main-thread long tasks while the panes stream (PerformanceObserver
injected before the page loads), and how long after the last token reached the kernel the last
pane's final text is in the DOM. Not a test: it prints figures, not verdicts.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_browser.py [--panes 8] [--rate 200] [--seconds 20]

To see what a long task was made of: ``--trace`` records a Chrome trace and breaks every task
over 50 ms into what ran in it (the widget's frame, style, layout, paint, garbage collection);
``--profile`` samples the page's JavaScript. Both slow the page down; the figures of record
come from a run without them. ``--control`` runs the same streams with ``--no-widget``: the long
tasks JupyterLab and this machine have without any pane to render. ``--cpu-slowdown 3`` runs the
page's main thread three times slower (CDP throttling): the headroom left for a slower machine.
Besides long tasks it reports the intervals between animation frames (16.7 ms when the page
keeps pace) and whether every pane ended scrolled to the bottom of its answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.append(str(REPO))  # an explicit PYTHONPATH (or an installed llmgrid_nb) comes first
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from browser.jupyterlab_driver import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    RECORDER_JS,
    LabNotebook,
    launch_chromium,
    start_lab,
)
from playwright.sync_api import sync_playwright  # noqa: E402

from llmgrid_nb.sim import start_simulator  # noqa: E402

#: Every main-thread task over 50 ms from page load on; the streaming window is cut out later.
LONGTASKS_JS = """
window.__longtasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
}).observe({ type: 'longtask', buffered: true });
// Long animation frames say whose script ran in them; the widget's ESM is a blob: module.
window.__loaf = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const widget = e.scripts.filter((s) => (s.sourceURL || '').startsWith('blob:'));
    window.__loaf.push({ start: e.startTime, duration: e.duration,
      render_ms: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
      layout_ms: e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0,
      scripts: e.scripts.map((s) => ({ invoker: `${s.invokerType}:${s.invoker}`,
        src: (s.sourceURL || '').split('/').pop().slice(0, 30), fn: s.sourceFunctionName,
        ms: Math.round(s.duration), forced_ms: Math.round(s.forcedStyleAndLayoutDuration) })),
      widget_ms: widget.reduce((a, s) => a + s.duration, 0),
      widget_layout_ms: widget.reduce((a, s) => a + s.forcedStyleAndLayoutDuration, 0) });
  }
}).observe({ type: 'long-animation-frame', buffered: true });
// Every animation frame's start: the gaps between them show how close to a long task the page
// came, a steadier figure than counting the rare frames over 50 ms.
window.__frames = [];
const onFrame = (t) => { window.__frames.push(t); requestAnimationFrame(onFrame); };
requestAnimationFrame(onFrame);
"""

DUMP = '''\
import json, os
_c = _llmgrid.chunks
_tok = _c[_c["kind"] == "token"]
with open("bench.json.tmp", "w") as _f:
    json.dump({
        "t0_wall": _llmgrid.t0_wall,
        "first_token_s": float(_tok["t_s"].min()),
        "last_token_s": float(_tok["t_s"].max()),
        "tokens": int(len(_tok)),
        "lengths": {k: len(v.encode("utf-16-le")) // 2 for k, v in _llmgrid.texts.items()},
        "statuses": _llmgrid.statuses,
    }, _f)
os.replace("bench.json.tmp", "bench.json")
'''

#: Our custom comm messages: ``{"v": 1, "type": "delta", ...}`` inside a kernel websocket frame.
DELTA = re.compile(rb'"type":\s*"delta"')
#: The kernel's reply when a cell finished (in the header of a kernel websocket frame).
EXECUTE_REPLY = re.compile(rb'"msg_type":\s*"execute_reply"')


def peak_per_second(times: list[float]) -> int:
    """The most events in any 1-second window (``times`` sorted, in seconds)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _role(proc: psutil.Process) -> str | None:
    cmd = " ".join(proc.cmdline())
    if "ipykernel_launcher" in cmd:
        return "kernel"
    if "-m jupyterlab" in cmd:
        return "jupyter server"
    if "llmgrid_nb.sim" in cmd:
        return "simulator"
    if "chrom" in proc.name():
        return "chromium (all processes)"
    return None


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds used so far by each process of the setup, summed by role."""
    out: dict[str, float] = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            role = _role(proc)
            if role:
                t = proc.cpu_times()
                out[role] = out.get(role, 0.0) + t.user + t.system
        except psutil.Error:
            continue
    return out


def profile_summary(profile: dict[str, Any], top: int = 30) -> list[tuple[str, float]]:
    """Self time (ms) per function from a CDP CPU profile, largest first."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    self_us: dict[int, float] = {}
    for node_id, dt in zip(profile["samples"], profile["timeDeltas"]):
        self_us[node_id] = self_us.get(node_id, 0.0) + dt
    by_name: dict[str, float] = {}
    for node_id, us in self_us.items():
        frame = nodes[node_id]["callFrame"]
        url = frame["url"]
        where = "widget" if url.startswith("blob:") else (url.rsplit("/", 1)[-1][:40] or "native")
        name = f"{frame['functionName'] or '(anonymous)'} [{where}:{frame['lineNumber']}]"
        by_name[name] = by_name.get(name, 0.0) + us / 1000
    return sorted(by_name.items(), key=lambda kv: -kv[1])[:top]


def long_task_breakdown(events: list[dict[str, Any]], over_ms: float = 50.0) -> list[dict[str, Any]]:
    """For every renderer main-thread task over ``over_ms`` in a Chrome trace: what ran in it.

    Sums the durations of the trace events nested in the task by name (function calls, animation
    frames, style, layout, paint, garbage collection), largest first."""
    tasks = [e for e in events if e.get("name") == "RunTask" and e.get("ph") == "X"
             and e.get("dur", 0) > over_ms * 1000]
    out = []
    for task in tasks:
        start, end = task["ts"], task["ts"] + task["dur"]
        inside: dict[str, float] = {}
        for e in events:
            if (e.get("ph") == "X" and e is not task and e.get("tid") == task["tid"]
                    and e.get("pid") == task["pid"] and start <= e["ts"] < end):
                name = e["name"]
                data = e.get("args", {}).get("data", {})
                if name in ("FunctionCall", "EventDispatch") and data:
                    where = data.get("url", "") or data.get("type", "")
                    name = f"{name} {'widget' if where.startswith('blob:') else where.rsplit('/', 1)[-1][:30]}"
                inside[name] = inside.get(name, 0.0) + e["dur"] / 1000
        out.append({"ms": round(task["dur"] / 1000, 1), "ts_ms": task["ts"] / 1000,
                    "inside": sorted(((k, round(v, 1)) for k, v in inside.items()), key=lambda kv: -kv[1])[:14]})
    return out


TRACE_TOTALS = ("MajorGC", "MinorGC", "ParseHTML", "UpdateLayoutTree", "Layout", "PrePaint", "Paint",
                "Layerize", "IntersectionObserverController::computeIntersections", "FunctionCall widget")


def trace_totals(events: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """How often, and for how many ms in all, the page's main thread ran each kind of work
    (``TRACE_TOTALS``) over the trace: a figure of work done, steadier than long-task counts on a
    noisy machine. Top-level events only, so nested ones are not counted twice."""
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e.get("args", {}).get("name") == "CrRendererMain"}
    totals: dict[str, tuple[int, float]] = {}
    open_until: dict[str, float] = {}
    for e in sorted((e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in mains),
                    key=lambda e: e["ts"]):
        name = e["name"]
        if name == "FunctionCall":
            url = e.get("args", {}).get("data", {}).get("url", "")
            name = "FunctionCall widget" if url.startswith("blob:") else name
        if name not in TRACE_TOTALS or e["ts"] < open_until.get(name, 0):
            continue
        open_until[name] = e["ts"] + e.get("dur", 0)
        n, ms = totals.get(name, (0, 0.0))
        totals[name] = (n + 1, ms + e.get("dur", 0) / 1000)
    return {k: (n, round(ms, 1)) for k, (n, ms) in totals.items()}


def measure(panes: int, rate: float, seconds: float, prompt: str, profile: bool = False,
            trace: bool = False, control: bool = False, cpu_slowdown: float = 1.0) -> dict[str, Any]:
    tokens = int(rate * seconds)
    models = [f"sim/steady?rate={rate:g}&tokens={tokens}&jitter=0&seed={i}" for i in range(panes)]
    no_widget = "--no-widget " if control else ""
    cells = {
        "setup": "%load_ext llmgrid_nb\nprint('ready')",
        "run": f'%llmgrid {no_widget}-m "{",".join(models)}" "{prompt}"',
        "dump": DUMP,
    }
    frames = 0  # delta frames seen by Playwright's websocket listener
    replies = 0  # execute_reply messages seen on the kernel websocket
    frame_bytes = 0
    frame_times: list[float] = []  # the browser's own receive timestamps (CDP), seconds

    def on_websocket(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            nonlocal frames, frame_bytes, replies
            data = payload if isinstance(payload, bytes) else payload.encode()
            if EXECUTE_REPLY.search(data):
                replies += 1
            if DELTA.search(data):
                frames += 1
                frame_bytes += len(data)

        if "/api/kernels/" in ws.url:
            ws.on("framereceived", on_frame)

    def on_cdp_frame(params: dict[str, Any]) -> None:
        response = params["response"]
        data = response["payloadData"]
        raw = base64.b64decode(data) if response.get("opcode") == 2 else data.encode()
        if DELTA.search(raw):
            frame_times.append(params["timestamp"])

    with start_simulator() as sim, tempfile.TemporaryDirectory(prefix="llmgrid-bench-") as tmp:
        lab = start_lab(Path(tmp), env={"LLMGRID_SIM_URL": sim.url})
        try:
            with sync_playwright() as pw:
                chromium = launch_chromium(pw)
                context = chromium.new_context(viewport={"width": 1500, "height": 1000})
                context.add_init_script(RECORDER_JS)
                context.add_init_script(LONGTASKS_JS)
                page = context.new_page()
                page.on("websocket", on_websocket)
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.on("Network.webSocketFrameReceived", on_cdp_frame)
                nb = LabNotebook(page, lab, "bench.ipynb", cells).open()
                nb.run("setup", timeout=90)
                page.evaluate("window.__lg.reset()")
                if cpu_slowdown > 1:  # a slower machine: the page's main thread runs N times slower
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu_slowdown})
                if profile:
                    cdp.send("Profiler.enable")
                    cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                    cdp.send("Profiler.start")
                trace_events: list[dict[str, Any]] = []
                trace_done: list[bool] = []
                if trace:
                    cdp.on("Tracing.dataCollected", lambda p: trace_events.extend(p["value"]))
                    cdp.on("Tracing.tracingComplete", lambda p: trace_done.append(True))
                    cdp.send("Tracing.start", {"categories": "devtools.timeline,v8,blink.user_timing,"
                                               "disabled-by-default-devtools.timeline",
                                               "transferMode": "ReportEvents"})
                heap_before = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
                t_press = page.evaluate("performance.now()")
                cpu_before, wall_before = cpu_snapshot(), time.monotonic()
                replies_before = replies
                nb.run("run", wait=False)
                # Wait for the cell's execute_reply on the websocket rather than polling the
                # prompt: each poll is a selector query and a forced layout on the page's main
                # thread (~2 ms, ten times a second), work a user's page does not have.
                deadline = time.monotonic() + seconds + 60
                while replies == replies_before and time.monotonic() < deadline:
                    page.wait_for_timeout(100)  # keeps Playwright's websocket events flowing in
                cpu_after, wall_after = cpu_snapshot(), time.monotonic()
                nb.wait_finished("run", timeout=5)
                heap_after = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
                # How far each pane's newest text is below its view: 0 while a pane follows the answer.
                # (Pane bodies lay their content out bottom-up: scrollTop counts up from the bottom.)
                below = page.evaluate("[...document.querySelectorAll('.llmgrid-pane-body')]"
                                      ".map(b => Math.round(-b.scrollTop))")
                cpu_profile = cdp.send("Profiler.stop")["profile"] if profile else None
                if trace:
                    cdp.send("Tracing.end")
                    while not trace_done:
                        page.wait_for_timeout(100)
                page.wait_for_timeout(500)  # let the last frames and mutations land
                nb.run("dump")
                kernel = nb.read_json("bench.json")
                changes = page.evaluate("window.__lg.panes")
                longtasks = page.evaluate("window.__longtasks")
                loafs = page.evaluate("window.__loaf")
                frame_starts = page.evaluate("window.__frames")
                time_origin = page.evaluate("performance.timeOrigin")
                if not control:
                    if nb.grid("run").count() != 1:
                        raise SystemExit(f"the grid never rendered in the browser:\n{nb.all_outputs()}")
                    ARTIFACTS.mkdir(parents=True, exist_ok=True)
                    page.set_viewport_size({"width": 1500, "height": 2200})  # room for all 8 panes
                    nb.grid("run").screenshot(path=str(ARTIFACTS / "bench_browser.png"))
                context.close()
                chromium.close()
        finally:
            lab.stop()

    if trace:  # the whole trace, for Chrome DevTools' Performance panel or ui.perfetto.dev
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "bench_browser_trace.json").write_text(json.dumps({"traceEvents": trace_events}))

    # Each pane's final text is in the DOM when its data-text-length first reaches the final length.
    visible: dict[str, dict[str, Any]] = {}
    for model, length in kernel["lengths"].items():
        hits = [c for c in changes if c["id"] == model and c["len"] == length]
        if hits:
            visible[model] = hits[0]
    last_token_ms = (kernel["t0_wall"] + kernel["last_token_s"]) * 1000
    complete = len(visible) == panes
    final_ms = max(c["wall"] for c in visible.values()) - last_token_ms if complete else float("nan")

    streaming = [c["t"] for c in changes if c["status"] == "streaming"]
    t_stream = min(streaming) if streaming else t_press
    t_end = max(c["t"] for c in visible.values()) if visible else float("inf")
    if control:  # no panes: the streaming window from the kernel's clock, in the page's time
        t_stream = (kernel["t0_wall"] + kernel["first_token_s"]) * 1000 - time_origin
        t_end = (kernel["t0_wall"] + kernel["last_token_s"]) * 1000 - time_origin
    during = [t["duration"] for t in longtasks if t_stream <= t["start"] <= t_end]
    startup = [t["duration"] for t in longtasks if t_press <= t["start"] < t_stream]
    frames_during = [f for f in loafs if t_stream <= f["start"] <= t_end]

    starts = [t for t in frame_starts if t_stream <= t <= t_end]
    intervals = sorted(b - a for a, b in zip(starts, starts[1:]))
    frame_times.sort()
    gaps = sorted(1000 * (b - a) for a, b in zip(frame_times, frame_times[1:]))
    stream_s = kernel["last_token_s"] - kernel["first_token_s"]
    elapsed = wall_after - wall_before
    return {
        "models": models,
        "statuses": sorted(set(kernel["statuses"].values())),
        "tokens": kernel["tokens"],
        "stream_s": stream_s,
        "delta_frames": frames,
        "delta_kib": frame_bytes / 1024,
        # Intervals between the first and the last delta the browser received, per second.
        "deltas_per_s": (len(frame_times) - 1) / (frame_times[-1] - frame_times[0])
        if len(frame_times) > 1 and frame_times[-1] > frame_times[0] else float("nan"),
        "delta_frames_cdp": len(frame_times),
        "deltas_peak_1s": peak_per_second(frame_times),
        "delta_gap_ms": {f"p{q}": gaps[min(len(gaps) - 1, len(gaps) * q // 100)] for q in (1, 10, 50, 90, 99)}
        if gaps else {},
        "longtasks": len(during),
        "longtask_max_ms": max(during, default=0.0),
        "longtask_total_ms": sum(during),
        "long_frames": len(frames_during),
        # Animation-frame intervals while streaming: 16.7 ms when every frame kept pace.
        "frame_interval_ms": {"p50": intervals[len(intervals) // 2], "p99": intervals[len(intervals) * 99 // 100],
                              "max": intervals[-1], "worst5": [round(x, 1) for x in intervals[-5:]],
                              "over_33": sum(x > 33.4 for x in intervals), "frames": len(intervals)}
        if intervals else {},
        # When each happened, in ms after the first pane started streaming, to tell start-up,
        # steady state and the end apart.
        "longtasks_at_ms": [(round(t["start"] - t_stream), round(t["duration"])) for t in longtasks
                            if t_stream <= t["start"] <= t_end],
        "long_frames_detail": [{**f, "start": round(f["start"] - t_stream)} for f in frames_during],
        "long_frames_widget_ms": sum(f["widget_ms"] for f in frames_during),
        "long_frames_widget_layout_ms": sum(f["widget_layout_ms"] for f in frames_during),
        "startup_longtasks": len(startup),
        "startup_longtask_max_ms": max(startup, default=0.0),
        "final_visible_ms": final_ms,
        "js_heap_mb": [round(heap_before / 2**20, 1), round(heap_after / 2**20, 1)],
        "below_bottom_px": below,
        "panes_complete": len(visible),
        "profile_top_self_ms": profile_summary(cpu_profile) if cpu_profile else [],
        "trace_long_tasks": long_task_breakdown(trace_events) if trace else [],
        "trace_totals": trace_totals(trace_events) if trace else {},
        "cpu_percent": {role: 100 * (cpu_after.get(role, 0.0) - t) / elapsed for role, t in cpu_before.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panes", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0, help="tokens/s per pane")
    parser.add_argument("--seconds", type=float, default=20.0, help="stream length per pane")
    parser.add_argument("--prompt", default="Explain SSE")
    parser.add_argument("--profile", action="store_true", help="also sample the page's JS (adds overhead)")
    parser.add_argument("--trace", action="store_true", help="record a Chrome trace and break down long tasks")
    parser.add_argument("--cpu-slowdown", type=float, default=1.0, metavar="N",
                        help="run the page's main thread N times slower (CDP CPU throttling): "
                             "how much headroom the grid leaves on a slower machine")
    parser.add_argument("--control", action="store_true",
                        help="the same streams with --no-widget: long tasks of JupyterLab and the machine alone")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    r = measure(args.panes, args.rate, args.seconds, args.prompt, args.profile, args.trace, args.control,
                args.cpu_slowdown)
    r["load_average_before"] = load
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "bench_browser.json").write_text(json.dumps(r, indent=2))

    command = " ".join(["PYTHONPATH=. .venv/bin/python benchmarks/bench_browser.py", shlex.join(sys.argv[1:])])
    print(f"\n{args.panes} panes x {args.rate:g} tokens/s x {args.seconds:g} s: {r['tokens']:,} tokens "
          f"in {r['stream_s']:.1f} s, final statuses: {', '.join(r['statuses'])}\n")
    print("| figure | measured | target |")
    print("|---|---|---|")
    print(f"| delta messages received by the browser | {r['deltas_per_s']:.1f}/s mean, "
          f"{r['deltas_peak_1s']} in the busiest second ({r['delta_frames']} frames, "
          f"{r['delta_kib']:.0f} KiB) | <= 30/s per grid |")
    print(f"| main-thread long tasks while streaming | {r['longtasks']} over 50 ms "
          f"(max {r['longtask_max_ms']:.0f} ms, {r['longtask_total_ms']:.0f} ms in all) | none over 50 ms |")
    print(f"| last token in the kernel -> final text in the DOM | {r['final_visible_ms']:.0f} ms "
          f"({r['panes_complete']}/{args.panes} panes complete) | <= 100 ms |")
    print(f"\nLong animation frames (> 50 ms) while streaming: {r['long_frames']}; the widget's script ran "
          f"{r['long_frames_widget_ms']:.0f} ms in them, {r['long_frames_widget_layout_ms']:.0f} ms of it "
          "in style and layout it forced.")
    fi = r["frame_interval_ms"]
    if fi:
        print(f"Animation frames while streaming: {fi['frames']}, interval p50 {fi['p50']:.1f} ms, p99 "
              f"{fi['p99']:.1f} ms, {fi['over_33']} over 33 ms (two frames), worst {fi['worst5']} ms.")
    if not args.control:
        print(f"Panes still at the bottom of their answer when it ended: "
              f"{sum(px <= 30 for px in r['below_bottom_px'])} of {args.panes} "
              f"(px below the view: {r['below_bottom_px']}).")
    print(f"Page JS heap (coarse): {r['js_heap_mb'][0]} MB before the run, {r['js_heap_mb'][1]} MB after.")
    cpu = ", ".join(f"{role} {pct:.0f} %" for role, pct in sorted(r["cpu_percent"].items()))
    print(f"Also: {r['startup_longtasks']} long tasks (max {r['startup_longtask_max_ms']:.0f} ms) between "
          f"Shift+Enter and the first streaming pane; CPU during the run (% of one core): {cpu}; "
          f"{os.cpu_count()} cores, load average {load:.1f} before the run (other work on the machine "
          "shows up as long tasks).")
    for name, ms in r["profile_top_self_ms"]:
        print(f"  self {ms:7.1f} ms  {name}")
    if r["trace_totals"]:
        print("  traced main-thread work over the run (count, ms): " + ", ".join(
            f"{k} {n}x {ms} ms" for k, (n, ms) in sorted(r["trace_totals"].items(), key=lambda kv: -kv[1][1])))
    for task in r["trace_long_tasks"]:
        print(f"  traced task {task['ms']} ms: " + ", ".join(f"{k} {v}" for k, v in task["inside"]))
    print(f"Long tasks at (ms after streaming began, duration): {r['longtasks_at_ms']}")
    print(f"Command: `{command.strip()}` (Chromium: {CHROMIUM}). "
          "Figures and a screenshot: test-artifacts/bench_browser.{json,png}.")


if __name__ == "__main__":
    main()
