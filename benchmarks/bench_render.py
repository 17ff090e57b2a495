"""Render benchmark: the widget's front end alone, in headless Chromium, without JupyterLab.

Replays what the kernel sends for N simulator panes at R tokens/s (the simulator's own answers,
cut into its own token pieces, as 25 Hz delta messages) into the built bundle with a stand-in
model, and reports how long the widget keeps the main thread busy: per-frame time of its
animation-frame flush, main-thread long tasks and long animation frames. Quicker to iterate on
than ``bench_browser.py`` (no kernel, no websocket); use that one for the figures of record.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_render.py [--panes 8] [--rate 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.append(str(REPO))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench_browser import profile_summary  # noqa: E402
from browser.jupyterlab_driver import launch_chromium  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from llmgrid_nb.sim.generation import generate  # noqa: E402
from llmgrid_nb.sim.profiles import parse_model  # noqa: E402
from llmgrid_nb.widget import bundle_path  # noqa: E402

#: Replays ``window.__pieces`` (pane -> token pieces) as the kernel's throttled deltas would.
DRIVER_JS = """
async ({ rate, hz }) => {
  const { default: widget } = await import(window.__bundleUrl);
  const listeners = new Map();
  const traits = {
    panes: Object.keys(window.__pieces).map((id) => ({ id, name: id, model: id, route: "simulated", kind: "model" })),
    run: { run_id: "r1", prompt: "Explain SSE", status: "running", elapsed_s: 0, total_tokens: 0,
           started_at: Date.now(), stoppable: true },
    snapshot: {},
  };
  const model = {
    get: (k) => traits[k], set() {}, save_changes() {}, send() {},
    on: (e, cb) => listeners.set(e, [...(listeners.get(e) ?? []), cb]),
    off() {},
  };
  const el = document.getElementById("host");
  widget.render({ model, el });
  const emit = (msg) => (listeners.get("msg:custom") ?? []).forEach((cb) => cb(msg));

  // Time the widget's own animation-frame work: wrap rAF callbacks registered by the bundle.
  const flushes = [];
  const timeline = [];
  const raf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (cb) => raf((ts) => {
    const t = performance.now();
    cb(ts);
    flushes.push(performance.now() - t);
    timeline.push([Math.round(t - t0), +(performance.now() - t).toFixed(1)]);
  });

  const ids = Object.keys(window.__pieces);
  const sent = Object.fromEntries(ids.map((id) => [id, { n: 0, len: 0 }]));
  const total = Math.max(...ids.map((id) => window.__pieces[id].length));
  const t0 = performance.now();
  let seq = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      const panes = {};
      for (const id of ids) {
        const pieces = window.__pieces[id];
        const s = sent[id];
        const upto = Math.min(due, pieces.length);
        if (upto <= s.n) continue;
        const text = pieces.slice(s.n, upto).join("");
        panes[id] = { text: [s.len, text], status: upto >= pieces.length ? "done" : "streaming",
                      metrics: { tokens: upto, n_chunks: upto, ttft_s: 0.05, tokens_per_s: rate } };
        s.n = upto;
        s.len += text.length;
      }
      if (Object.keys(panes).length) emit({ v: 1, type: "delta", seq: ++seq, panes });
      if (due >= total) {
        clearInterval(timer);
        setTimeout(resolve, 300);
      }
    }, 1000 / hz);
  });
  flushes.sort((a, b) => a - b);
  const mean = (xs) => xs.reduce((a, b) => a + b[1], 0) / Math.max(1, xs.length);
  const early = mean(timeline.filter(([t]) => t > 500 && t < 3000));
  const late = mean(timeline.filter(([t]) => t > (total / rate) * 1000 - 2500));
  timeline.sort((a, b) => b[1] - a[1]);
  const q = (p) => flushes[Math.min(flushes.length - 1, Math.floor((flushes.length * p) / 100))];
  return {
    frames: flushes.length,
    slowest: timeline.slice(0, 8),
    mean_early_ms: early,
    mean_late_ms: late,
    flush_ms: { p50: q(50), p90: q(90), p99: q(99), max: flushes[flushes.length - 1],
                total: flushes.reduce((a, b) => a + b, 0) },
    longtasks: window.__longtasks.filter((t) => t.start >= t0).map((t) => [Math.round(t.start - t0), Math.round(t.duration)]),
    text_lengths: [...document.querySelectorAll(".llmgrid-pane")].map((p) => Number(p.dataset.textLength)),
  };
}
"""

OBSERVER_JS = """
window.__longtasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
}).observe({ type: 'longtask', buffered: true });
"""


def pieces_for(panes: int, rate: float, seconds: float) -> dict[str, list[str]]:
    """Each pane's token pieces, as the simulator streams them (seeds 0..panes-1)."""
    tokens = int(rate * seconds)
    out = {}
    for i in range(panes):
        options = parse_model(f"steady?rate={rate:g}&tokens={tokens}&jitter=0&seed={i}")
        completion = generate(options.profile, [{"role": "user", "content": "Explain SSE"}], i)
        out[f"sim/steady-{i}"] = [p.text for p in completion.pieces if p.kind == "content"]
    return out


#: Classic (space-taking) scrollbars, as a desktop browser shows them; headless ones may overlay.
SCROLLBARS_CSS = "::-webkit-scrollbar { width: 10px; height: 10px; } ::-webkit-scrollbar-thumb { background: #aaa; }"


def measure(panes: int, rate: float, seconds: float, *, hz: float = 25.0, width: int = 1500,
            height: int = 1000, profile: bool = False, extra_css: str = "") -> dict[str, Any]:
    """Replay the panes into the bundle in Chromium; flush times, long tasks, optional profile."""
    bundle = bundle_path()
    css = bundle.with_suffix(".css")
    pieces = pieces_for(panes, rate, seconds)
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        page = chromium.new_page(viewport={"width": width, "height": height})
        page.set_content(f"<!doctype html><style>{css.read_text() if css.is_file() else ''}</style>"
                         f"<style>{SCROLLBARS_CSS}</style><style>{extra_css}</style>"
                         "<div id='host' style='width: 100%'></div>")
        page.evaluate("(src) => { window.__bundleUrl = URL.createObjectURL(new Blob([src], "
                      "{ type: 'text/javascript' })); }", bundle.read_text())
        page.evaluate("(p) => { window.__pieces = p; }", pieces)
        page.evaluate(OBSERVER_JS)
        cdp = page.context.new_cdp_session(page) if profile else None
        if cdp:
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 200})
            cdp.send("Profiler.start")
        result = page.evaluate(DRIVER_JS, {"rate": rate, "hz": hz})
        if cdp:
            prof = cdp.send("Profiler.stop")["profile"]
            result["profile"] = profile_summary(prof, 25)
        chromium.close()
    expected = [len("".join(p).encode("utf-16-le")) // 2 for p in pieces.values()]
    result["complete"] = sorted(result["text_lengths"]) == sorted(expected)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panes", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0, help="tokens/s per pane")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hz", type=float, default=25.0, help="delta messages per second")
    parser.add_argument("--width", type=int, default=1500, help="viewport width (px)")
    parser.add_argument("--profile", action="store_true", help="print where the page's JS time went")
    parser.add_argument("--height", type=int, default=1000, help="viewport height (px)")
    parser.add_argument("--css", default="", help="extra CSS, to try a style change without a rebuild")
    args = parser.parse_args()
    r = measure(args.panes, args.rate, args.seconds, hz=args.hz, width=args.width, height=args.height,
                profile=args.profile, extra_css=args.css)
    for name, ms in r.get("profile", []):
        print(f"  self {ms:7.1f} ms  {name}")
    f = r["flush_ms"]
    print(f"{args.panes} panes x {args.rate:g} tok/s x {args.seconds:g} s at {args.hz:g} deltas/s: "
          f"{r['frames']} flushes; flush ms p50 {f['p50']:.1f} p90 {f['p90']:.1f} p99 {f['p99']:.1f} "
          f"max {f['max']:.1f} (total {f['total']:.0f}); {len(r['longtasks'])} long tasks, max "
          f"{max((d for _, d in r['longtasks']), default=0)} ms; "
          f"final text complete: {r['complete']}")
    print(f"Slowest flushes (at ms, ms): {r['slowest']}; long tasks (at ms, ms): {r['longtasks'][:12]}")
    print(f"Mean flush 0.5-3 s: {r['mean_early_ms']:.1f} ms; last 2.5 s: {r['mean_late_ms']:.1f} ms")
    print("Command: PYTHONPATH=. .venv/bin/python benchmarks/bench_render.py", shlex.join(sys.argv[1:]))
    print(json.dumps(r["flush_ms"]))


if __name__ == "__main__":
    main()
