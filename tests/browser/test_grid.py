"""The grid in real JupyterLab and Chromium: live streaming, Stop, kernel interrupt, sanitising.

One notebook (one kernel) serves every test; each test runs its own cells and reads what the
kernel holds from a JSON file a cell writes. Pane ids are the model strings, distinct per test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser.jupyterlab_driver import ARTIFACTS, LabNotebook, LabServer, lab_notebook, utf16_len

ENDED = {"done", "failed", "cancelled"}

SETUP = '''\
%load_ext llmgrid_nb
import json, os

def _dump(name, grid):
    """Write what the kernel holds for the run where the test reads it (atomically)."""
    data = {"texts": grid.texts, "statuses": grid.statuses, "status": grid.status}
    with open(name + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(name + ".tmp", name)

print("llmgrid ready")
'''

#: The default profiles under their plain names: this run's grid is the README's screenshot.
STREAM_MODELS = ["sim/fast", "sim/steady", "sim/reasoning"]
STOP_MODELS = ["sim/steady?tokens=900&rate=30&seed=4", "sim/steady?tokens=900&rate=30&seed=5",
               "sim/fast?tokens=900&rate=30&seed=6"]
INTERRUPT_MODELS = ["sim/steady?tokens=900&rate=30&seed=7", "sim/slow?tokens=900&rate=30&ttft=0.3&seed=8",
                    "sim/fast?tokens=900&rate=30&seed=9"]
XSS_MODEL = "sim/fast?xss=1&tokens=60&seed=10"
BIG_MODEL = "sim/instant?tokens=25000&seed=11"
LATE_MODEL = "sim/steady?tokens=900&rate=40&seed=13"
FOLLOW_MODEL = "sim/steady?tokens=2500&rate=200&seed=14"
EIGHT_MODELS = [f"sim/steady?tokens=1600&rate=200&jitter=0&seed={20 + i}" for i in range(8)]

CELLS = {
    "setup": SETUP,
    "stream": f'%llmgrid "Explain SSE" -m "{",".join(STREAM_MODELS)}"',
    "stream_dump": '_dump("stream.json", _llmgrid)',
    "stop": f'%llmgrid --background -m "{",".join(STOP_MODELS)}" "Explain SSE"',
    "stop_dump": '_llmgrid.wait(10)\n_dump("stop.json", _llmgrid)',
    "interrupt": f'%llmgrid -m "{",".join(INTERRUPT_MODELS)}" "Explain SSE"',
    "interrupt_dump": '_dump("interrupt.json", _llmgrid)',
    "xss": f'%llmgrid -m "{XSS_MODEL}" "Say hi"',
    "xss_dump": '_dump("xss.json", _llmgrid)',
    "brave_xss": ('import llmgrid_nb as lg\n'
                  '_brave = lg.run("Explain SSE", ["sim/fast?tokens=10&seed=12"], brave=lg.Brave(\n'
                  '    params={"sim_xss": 1}, cache=False, top_k=2, synthesis_model="sim/fast?tokens=120"))\n'
                  '_dump("brave.json", _brave)'),
    "big": f'%llmgrid -m "{BIG_MODEL}" "Explain SSE"',
    "big_dump": '_dump("big.json", _llmgrid)',
    "late": f'%llmgrid --background -m "{LATE_MODEL}" "Explain SSE"',
    "late_view": "_llmgrid.show()",
    "late_dump": '_llmgrid.cancel()\n_llmgrid.wait(10)\n_dump("late.json", _llmgrid)',
    "follow": f'%llmgrid --background -m "{FOLLOW_MODEL}" "Explain SSE"',
    "eight": f'%llmgrid -m "{",".join(EIGHT_MODELS)}" "Explain SSE"',
    "follow_dump": '_llmgrid.cancel()\n_llmgrid.wait(10)\n_dump("follow.json", _llmgrid)',
}

#: What the page shows of untrusted content inside a grid root (shared by the sanitiser tests).
INERT_JS = """root => ({
  flag: typeof window.__llmgrid_xss,
  active: [...root.querySelectorAll('script, img, svg, iframe, object, embed, style, link, form')]
    .map(el => el.tagName.toLowerCase()),
  handlers: [...root.querySelectorAll('*')].flatMap(el => [...el.attributes].map(a => a.name))
    .filter(n => n.startsWith('on')),
  unsafeLinks: [...root.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
    .filter(h => !/^(https?|mailto):/i.test(h.trim())),
})"""

Panes = list[dict[str, Any]]

#: Each pane as the page shows it: id, status, data-text-length and the rendered text.
PANES_JS = """root => [...root.querySelectorAll('.llmgrid-pane')].map(p => ({
  id: p.dataset.paneId, status: p.dataset.status, len: Number(p.dataset.textLength),
  text: p.querySelector('.llmgrid-pane-text').textContent }))"""


def words(text: str) -> list[str]:
    """The alphanumeric words of a text: what survives Markdown rendering unchanged."""
    return re.findall(r"[A-Za-z0-9]+", text)


def source_words(markdown: str) -> list[str]:
    """The words of Markdown source that its rendering shows (no fence info, no list numbers)."""
    markdown = re.sub(r"(?m)^( {0,3}(?:```|~~~))[^\n`]*$", r"\1", markdown)
    markdown = re.sub(r"(?m)^( {0,3})\d{1,9}[.)](?= |$)", r"\1", markdown)
    return words(markdown)


def panes(nb: LabNotebook, key: str) -> Panes:
    """Every pane of the grid in cell ``key``, as the page shows it now."""
    return nb.grid(key).evaluate(PANES_JS)  # type: ignore[no-any-return]


def wait_panes(nb: LabNotebook, key: str, ok: Callable[[Panes], bool], what: str, timeout: float = 20.0) -> Panes:
    """Poll the grid of cell ``key`` until ``ok(panes)``; fail with the last state otherwise."""
    deadline = time.monotonic() + timeout
    state: Panes = []
    while time.monotonic() < deadline:
        if nb.grid(key).count() == 1:
            state = panes(nb, key)
            if ok(state):
                return state
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; panes: "
                         f"{[(p['id'], p['status'], p['len']) for p in state]}\n{nb.all_outputs()}")


def recorded(nb: LabNotebook) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The page's log of pane attribute changes and of Stop/Interrupt clicks since the last reset."""
    log = nb.page.evaluate("({panes: window.__lg.panes, clicks: window.__lg.clicks})")
    return log["panes"], log["clicks"]


def ended_at(changes: list[dict[str, Any]], pane_id: str, after: float) -> dict[str, Any]:
    """The first change after ``after`` (ms) that shows ``pane_id`` ended."""
    mine = [c for c in changes if c["id"] == pane_id]
    for c in mine:
        if c["t"] >= after and c["status"] in ENDED:
            return c
    seen = [(round(c["t"]), c["status"], c["len"]) for c in mine if c["status"] in ENDED or c is mine[-1]]
    raise AssertionError(f"{pane_id} never ended after t={after:.0f} ms; its last/ended changes: {seen}")


def assert_dom_matches_kernel(dom: list[dict[str, Any]], kernel: dict[str, Any]) -> None:
    """Same panes in the same order; every pane's text has the kernel's length and words."""
    assert [p["id"] for p in dom] == list(kernel["texts"])
    for p in dom:
        text = kernel["texts"][p["id"]]
        assert p["len"] == utf16_len(text), f"{p['id']}: DOM length {p['len']} != kernel {utf16_len(text)}"
        assert words(p["text"]) == source_words(text), f"{p['id']}: rendered words differ from the kernel's text"


@pytest.fixture(scope="module")
def nb(browser: Any, lab: LabServer) -> Iterator[LabNotebook]:
    with lab_notebook(browser, lab, "grid.ipynb", CELLS, viewport={"width": 1500, "height": 1000}) as notebook:
        notebook.run("setup", timeout=90)
        assert "llmgrid ready" in notebook.output_text("setup"), notebook.all_outputs()
        yield notebook


@pytest.fixture(autouse=True)
def _fresh_log(nb: LabNotebook) -> None:
    nb.wait_idle(30)
    nb.page.evaluate("window.__lg.reset()")


def test_three_panes_stream_live_and_end_with_the_kernels_text(nb: LabNotebook) -> None:
    nb.run("stream", wait=False)
    wait_panes(nb, "stream", lambda ps: len(ps) == 3, "three panes", timeout=30)

    samples: list[Panes] = []
    shot = ARTIFACTS / "grid.png"
    shot_taken = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = panes(nb, "stream")
        samples.append(state)
        if all(p["status"] in ENDED for p in state):
            break
        if not shot_taken and min(p["len"] for p in state) >= 150:
            shot.parent.mkdir(parents=True, exist_ok=True)
            nb.cell("stream").screenshot(path=str(shot))  # the %llmgrid line and its grid
            shot_taken = True
        time.sleep(0.25)
    nb.wait_finished("stream")
    nb.run("stream_dump")
    kernel = nb.read_json("stream.json")
    final = panes(nb, "stream")
    if not shot_taken:  # a slow machine: the finished grid still makes a fine picture
        nb.cell("stream").screenshot(path=str(shot))

    assert [p["id"] for p in final] == STREAM_MODELS
    assert kernel["statuses"] == {m: "done" for m in STREAM_MODELS}
    assert nb.grid("stream").get_attribute("data-run-status") == "done"

    # Text grows while it streams: at successive instants, lengths strictly increase.
    growing = []
    for i, model in enumerate(STREAM_MODELS):
        streaming = [s[i] for s in samples if s[i]["status"] == "streaming"]
        lengths = [p["len"] for p in streaming]
        shown = [len(p["text"]) for p in streaming]
        if len(lengths) >= 4 and all(a < b for a, b in zip(lengths, lengths[1:])) \
                and all(a < b for a, b in zip(shown, shown[1:])):
            growing.append(model)
    assert growing, f"no pane grew at every sample while streaming: {[[p['len'] for p in s] for s in samples]}"

    # Every pane showed a live state before its final one, and ended "done".
    changes, _ = recorded(nb)
    for model in STREAM_MODELS:
        seen = [c["status"] for c in changes if c["id"] == model]
        assert seen and seen[-1] == "done", f"{model}: statuses {seen}"
        live = [i for i, s in enumerate(seen) if s in ("waiting", "streaming")]
        assert live and live[0] < seen.index("done"), f"{model}: no waiting/streaming before done: {seen}"

    assert_dom_matches_kernel(final, kernel)
    assert all(kernel["texts"][m] for m in STREAM_MODELS)


def test_stop_buttons_cancel_within_a_second_and_keep_the_partial_text(nb: LabNotebook) -> None:
    nb.run("stop")  # --background: the cell returns at once and the kernel stays free for Stop
    wait_panes(nb, "stop", lambda ps: len(ps) == 3 and all(p["status"] == "streaming" and p["len"] >= 40 for p in ps),
               "three streaming panes with text", timeout=30)

    # One pane's Stop: that pane ends, the others keep streaming.
    first = STOP_MODELS[0]
    nb.grid("stop").locator(f'.llmgrid-pane[data-pane-id="{first}"] .llmgrid-pane-stop').click()
    wait_panes(nb, "stop", lambda ps: ps[0]["status"] in ENDED, "the stopped pane to end", timeout=5)
    after_one = panes(nb, "stop")
    time.sleep(0.5)
    later = panes(nb, "stop")
    assert [p["status"] for p in after_one] == ["cancelled", "streaming", "streaming"]
    assert later[0]["len"] == after_one[0]["len"], "a cancelled pane must not grow"
    assert all(later[i]["len"] > after_one[i]["len"] for i in (1, 2)), "the other panes must keep streaming"

    # The run's Stop: every other pane ends.
    nb.grid("stop").locator(".llmgrid-footer .llmgrid-stop").click()
    dom = wait_panes(nb, "stop", lambda ps: all(p["status"] in ENDED for p in ps), "every pane to end", timeout=5)
    nb.run("stop_dump")
    kernel = nb.read_json("stop.json")

    changes, clicks = recorded(nb)
    pane_click = next(c for c in clicks if c["what"] == "pane-stop")
    run_click = next(c for c in clicks if c["what"] == "stop")
    assert pane_click["pane"] == first
    latencies = {first: ended_at(changes, first, pane_click["t"])["t"] - pane_click["t"]}
    for model in STOP_MODELS[1:]:
        latencies[model] = ended_at(changes, model, run_click["t"])["t"] - run_click["t"]
    print(f"Stop click -> pane cancelled in the DOM (ms): { {m: round(ms) for m, ms in latencies.items()} }")
    assert all(ms <= 1000 for ms in latencies.values()), f"Stop took too long (ms): {latencies}"

    assert [p["status"] for p in dom] == ["cancelled"] * 3
    assert kernel["statuses"] == {m: "cancelled" for m in STOP_MODELS}
    assert kernel["status"] == "cancelled"
    assert all(kernel["texts"][m] for m in STOP_MODELS), "partial text must be kept"
    assert all(utf16_len(kernel["texts"][m]) < 2000 for m in STOP_MODELS), "the streams ran on after Stop"
    assert_dom_matches_kernel(panes(nb, "stop"), kernel)
    assert nb.grid("stop").get_attribute("data-run-status") == "cancelled"


def test_kernel_interrupt_cancels_a_blocking_run_and_keeps_the_partial_text(nb: LabNotebook) -> None:
    nb.run("interrupt", wait=False)
    wait_panes(nb, "interrupt",
               lambda ps: len(ps) == 3 and all(p["status"] == "streaming" and p["len"] >= 40 for p in ps),
               "three streaming panes with text", timeout=30)
    assert nb.kernel_status() == "busy", "the default %llmgrid blocks the cell while it streams"
    # A blocked kernel cannot receive a Stop click: no Stop button may pretend otherwise.
    grid = nb.grid("interrupt")
    assert grid.locator(".llmgrid-footer .llmgrid-stop").is_disabled()
    assert grid.locator(".llmgrid-pane-stop:visible").count() == 0
    nb.interrupt()
    dom = wait_panes(nb, "interrupt", lambda ps: all(p["status"] in ENDED for p in ps), "every pane to end",
                     timeout=10)
    nb.wait_finished("interrupt", timeout=10)
    out = nb.output_text("interrupt")
    assert "Interrupted: every stream was cancelled" in out and "KeyboardInterrupt" in out, out
    nb.run("interrupt_dump")
    kernel = nb.read_json("interrupt.json")

    changes, clicks = recorded(nb)
    click = next(c for c in clicks if c["what"] == "notebook:interrupt-kernel")
    latencies = {m: ended_at(changes, m, click["t"])["t"] - click["t"] for m in INTERRUPT_MODELS}
    print(f"interrupt click -> pane cancelled in the DOM (ms): { {m: round(ms) for m, ms in latencies.items()} }")
    assert all(ms <= 3000 for ms in latencies.values()), f"interrupt took too long (ms): {latencies}"

    assert [p["status"] for p in dom] == ["cancelled"] * 3
    assert kernel["statuses"] == {m: "cancelled" for m in INTERRUPT_MODELS}
    assert all(kernel["texts"][m] for m in INTERRUPT_MODELS), "partial text must be kept"
    assert_dom_matches_kernel(panes(nb, "interrupt"), kernel)
    assert nb.grid("interrupt").get_attribute("data-run-status") == "cancelled"


def test_html_and_javascript_links_in_an_answer_execute_nothing(nb: LabNotebook) -> None:
    requests: list[str] = []

    def off_loopback(request: Any) -> None:
        if not request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:")):
            requests.append(request.url)

    nb.page.on("request", off_loopback)
    try:
        nb.run("xss")
        nb.page.wait_for_timeout(500)  # an <img onerror> would fire once its (failing) load ends
    finally:
        nb.page.remove_listener("request", off_loopback)

    root = nb.grid("xss")
    found = root.evaluate("""root => ({
      flag: typeof window.__llmgrid_xss,
      active: [...root.querySelectorAll('script, img, svg, iframe, object, embed, style, link, form')]
        .map(el => el.tagName.toLowerCase()),
      handlers: [...root.querySelectorAll('*')].flatMap(el => [...el.attributes].map(a => a.name))
        .filter(n => n.startsWith('on')),
      styled: root.querySelectorAll('.llmgrid-pane-text [style]').length,
      fixed: [...root.querySelectorAll('.llmgrid-pane-text *')]
        .filter(el => getComputedStyle(el).position === 'fixed').length,
      bodyShown: getComputedStyle(document.body).display !== 'none',
      unsafeLinks: [...root.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
        .filter(h => !/^(https?|mailto):/i.test(h.trim())),
      text: root.querySelector('.llmgrid-pane-text').textContent,
    })""")
    assert found["flag"] == "undefined", "the answer's HTML ran script"
    assert found["active"] == [], f"active elements from the answer in the grid: {found['active']}"
    assert found["handlers"] == [], f"event-handler attributes in the grid: {found['handlers']}"
    assert found["styled"] == 0 and found["fixed"] == 0 and found["bodyShown"], "the answer's CSS took effect"
    assert found["unsafeLinks"] == [], f"unsafe links in the grid: {found['unsafeLinks']}"
    assert root.locator('a[href^="javascript:" i]').count() == 0
    assert requests == [], f"rendering the answer fetched: {requests}"
    # The payload is shown as text, not dropped: the user sees what the model said.
    assert "harmless looking link" in found["text"]
    assert "window.__llmgrid_xss=1" in found["text"]

    nb.run("xss_dump")
    kernel = nb.read_json("xss.json")
    text = kernel["texts"][XSS_MODEL]
    assert kernel["statuses"] == {XSS_MODEL: "done"}
    assert "<script>" in text and "onerror=" in text and "javascript:" in text, "the simulator sent no payload"


def test_search_snippets_with_html_are_inert(nb: LabNotebook) -> None:
    nb.run("brave_xss", timeout=90)
    root = nb.grid("brave_xss")
    nb.page.wait_for_timeout(300)
    found = root.evaluate(INERT_JS)
    assert found == {"flag": "undefined", "active": [], "handlers": [], "unsafeLinks": []}, found
    search = root.locator('.llmgrid-pane[data-pane-id="brave"]')
    assert search.get_attribute("data-status") == "done"
    results = search.locator(".llmgrid-results li")
    assert results.count() >= 2
    assert "onerror" in results.first.text_content(), "a hostile title is shown as text"
    assert search.locator(".llmgrid-analysis li").count() == 2
    assert search.locator(".llmgrid-pane-text .llmgrid-cite").count() > 0, "citations are rendered"
    kernel = nb.read_json("brave.json")
    assert kernel["statuses"]["brave"] == "done"


def test_a_100_kb_answer_renders_fully_and_the_page_stays_responsive(nb: LabNotebook) -> None:
    nb.page.evaluate("""() => { window.__lt = [];
      new PerformanceObserver(l => l.getEntries().forEach(e => window.__lt.push(e.duration)))
        .observe({type: 'longtask'}); }""")
    nb.run("big", timeout=90)
    nb.run("big_dump")
    text = nb.read_json("big.json")["texts"][BIG_MODEL]
    assert len(text) > 100_000
    pane = nb.grid("big").locator(f'.llmgrid-pane[data-pane-id="{BIG_MODEL}"]')
    deadline = time.monotonic() + 10
    while int(pane.get_attribute("data-text-length") or 0) != utf16_len(text) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(pane.get_attribute("data-text-length") or 0) == utf16_len(text)
    rendered = pane.locator(".llmgrid-pane-text").text_content() or ""
    assert rendered.split()[-5:] == re.sub(r"[#*`>_-]", " ", text).split()[-5:] or len(rendered) > 90_000
    frame_ms = nb.page.evaluate("""() => new Promise(r => { const t = performance.now();
      requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now() - t))); })""")
    body = pane.locator(".llmgrid-pane-body")
    t = time.monotonic()
    body.evaluate("el => { el.scrollTop = 0; }")
    body.evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")
    scroll_ms = (time.monotonic() - t) * 1000
    longest = max(nb.page.evaluate("window.__lt") or [0])
    print(f"100 KB answer: two frames {frame_ms:.0f} ms, scroll round trip {scroll_ms:.0f} ms, "
          f"longest task {longest:.0f} ms")
    assert frame_ms < 250 and scroll_ms < 500, "the page stopped responding"
    assert longest < 2000, "a single task blocked the page for seconds"


def test_a_view_opened_mid_run_asks_for_the_text_it_missed_and_catches_up(nb: LabNotebook) -> None:
    nb.run("late")  # --background: the kernel is free to answer the new view's request
    first = wait_panes(nb, "late", lambda ps: len(ps) == 1 and ps[0]["len"] >= 150, "text in the first view")
    nb.run("late_view")  # a second view of the same widget: it starts from the run's first snapshot
    t0 = time.monotonic()
    second = wait_panes(nb, "late_view", lambda ps: len(ps) == 1 and ps[0]["len"] > first[0]["len"],
                        "the new view to catch up", timeout=5)
    caught_up = time.monotonic() - t0
    assert second[0]["status"] == "streaming", "it must catch up while the stream runs, not at its end"
    stale = nb.grid("late_view").locator(".llmgrid-pane").get_attribute("data-stale")
    assert stale is None, "a snapshot answered the view's request, so the pane is whole again"
    print(f"second view caught up {caught_up:.2f} s after it was opened, at {second[0]['len']} characters")
    nb.run("late_dump")
    kernel = nb.read_json("late.json")
    for key in ("late", "late_view"):
        dom = wait_panes(nb, key, lambda ps: ps[0]["status"] == "cancelled"
                         and ps[0]["len"] == utf16_len(kernel["texts"][LATE_MODEL]), f"{key} to end", timeout=5)
        assert_dom_matches_kernel(dom, kernel)


#: A pane body's scroll state: how far the view is from the bottom of its content (``below``)
#: and from its top (``top``).
#: (The body lays its content out bottom-up, so its scrollTop counts up from the bottom.)
SCROLL_JS = """el => { const below = -el.scrollTop;
  return { below, height: el.scrollHeight, view: el.clientHeight,
           top: el.scrollHeight - el.clientHeight - below }; }"""


def test_a_streaming_pane_follows_the_answer_until_the_user_scrolls_up(nb: LabNotebook) -> None:
    nb.run("follow")  # --background: the run streams ~13 s while the test scrolls
    pane = nb.grid("follow").locator(".llmgrid-pane")
    body = pane.locator(".llmgrid-pane-body")
    length = lambda: int(pane.get_attribute("data-text-length") or 0)  # noqa: E731
    deadline = time.monotonic() + 20
    while body.evaluate(SCROLL_JS)["height"] < body.evaluate(SCROLL_JS)["view"] + 300:
        assert time.monotonic() < deadline, "the answer never overflowed its pane"
        time.sleep(0.1)
    # Following: sampled between frames, the newest text is in view, whatever blocks arrive.
    for _ in range(16):
        state = body.evaluate(SCROLL_JS)
        assert state["below"] <= 30, f"the pane fell behind the answer: {state}"
        time.sleep(0.25)
    # The user scrolls up with the mouse wheel to read: the pane stays where they put it while
    # text keeps coming.
    body.hover()
    nb.page.mouse.wheel(0, -400)
    nb.page.wait_for_timeout(300)
    put = body.evaluate(SCROLL_JS)
    assert put["below"] >= 300, f"the wheel did not scroll the pane up: {put}"
    before = length()
    time.sleep(1.0)
    assert length() > before, "the stream should still be running"
    state = body.evaluate(SCROLL_JS)
    # (A few pixels of drift are the browser keeping blocks above in place as they get their heights.)
    assert abs(state["top"] - put["top"]) <= 24 and state["below"] > put["below"], \
        f"the pane scrolled away from where the user put it: {put} -> {state}"
    # Back at the bottom (scrollTop 0), it follows again.
    body.evaluate("el => { el.scrollTop = 0; }")
    before = length()
    time.sleep(1.0)
    assert length() > before, "the stream should still be running"
    state = body.evaluate(SCROLL_JS)
    assert state["below"] <= 30, f"the pane did not follow again: {state}"
    nb.run("follow_dump")
    assert nb.read_json("follow.json")["statuses"][FOLLOW_MODEL] == "cancelled"
    # The run is over; the window narrows and the text reflows: the pane stays at the bottom.
    size = nb.page.viewport_size
    try:
        nb.page.set_viewport_size({"width": 700, "height": 900})
        nb.page.wait_for_timeout(300)
        state = body.evaluate(SCROLL_JS)
        assert state["below"] <= 30, f"the pane lost the bottom when the window was resized: {state}"
    finally:
        if size:
            nb.page.set_viewport_size(size)


def test_every_pane_follows_its_answer_to_the_end_when_eight_stream_at_once(nb: LabNotebook) -> None:
    nb.run("eight", timeout=60)  # 8 s of 200 tokens/s in each pane
    bodies = nb.grid("eight").locator(".llmgrid-pane-body")
    assert bodies.count() == 8
    nb.page.wait_for_timeout(300)
    below = [bodies.nth(i).evaluate(SCROLL_JS)["below"] for i in range(8)]
    assert all(px <= 30 for px in below), f"panes stopped following their answer (px below the view): {below}"
