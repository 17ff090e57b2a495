"""What the grid must do in every notebook interface, and how the page shows it.

The JupyterLab module (``test_grid.py``) and the Notebook 7 module (``test_notebook7.py``) each
open one notebook holding ``CELLS`` (plus cells of their own) and run the same ``check_*``
functions on it; a check reads what the kernel holds from a JSON file a cell writes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from browser.jupyterlab_driver import NotebookPage, utf16_len

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
BLIND_MODELS = ["sim/fast?tokens=60&seed=30", "sim/steady?tokens=60&rate=300&seed=31"]

#: The cells the checks run, by key. Pane ids are the model strings, distinct per check.
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
    "blind": f'%llmgrid --blind -m "{",".join(BLIND_MODELS)}" "Explain SSE"',
    "blind_dump": ('import llmgrid_nb as lg\n'
                   '_v = lg.votes()\n'
                   'json.dump({"labels": _llmgrid.labels, "revealed": _llmgrid.revealed,\n'
                   '           "votes": _v[_v.run_id == _llmgrid.run_id].winner.tolist()},\n'
                   '          open("blind.json.tmp", "w"))\n'
                   'os.replace("blind.json.tmp", "blind.json")'),
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


def panes(nb: NotebookPage, key: str) -> Panes:
    """Every pane of the grid in cell ``key``, as the page shows it now."""
    return nb.grid(key).evaluate(PANES_JS)  # type: ignore[no-any-return]


def wait_panes(nb: NotebookPage, key: str, ok: Callable[[Panes], bool], what: str, timeout: float = 20.0) -> Panes:
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


def recorded(nb: NotebookPage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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


def unexpected_page_errors(nb: NotebookPage, *, known: Callable[[Any], bool] = lambda exc: False) -> list[str]:
    """The page's uncaught errors, with their stacks, other than those ``known`` says are the interface's own."""
    return [f"{exc.message}\n{exc.stack}" for exc in nb.page_errors if not known(exc)]


def check_panes_stream_live_and_end_with_the_kernels_text(nb: NotebookPage, *, screenshot: Path) -> None:
    """A blocking ``%llmgrid``: the panes' text grows while they stream, then equals ``grid.texts``.

    ``screenshot`` gets the cell and its grid mid-stream (or finished, on a slow machine).
    """
    nb.run("stream", wait=False)
    wait_panes(nb, "stream", lambda ps: len(ps) == 3, "three panes", timeout=30)

    samples: list[Panes] = []
    shot_taken = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = panes(nb, "stream")
        samples.append(state)
        if all(p["status"] in ENDED for p in state):
            break
        if not shot_taken and min(p["len"] for p in state) >= 150:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            nb.cell("stream").screenshot(path=str(screenshot))  # the %llmgrid line and its grid
            shot_taken = True
        time.sleep(0.25)
    nb.wait_finished("stream")
    nb.run("stream_dump")
    kernel = nb.read_json("stream.json")
    final = panes(nb, "stream")
    if not shot_taken:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        nb.cell("stream").screenshot(path=str(screenshot))

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


def check_stop_buttons_cancel_within_a_second_and_keep_the_partial_text(nb: NotebookPage) -> None:
    """A ``--background`` run: one pane's Stop ends that pane only, the run's Stop ends the rest."""
    nb.run("stop")  # --background: the cell returns at once and the kernel stays free for Stop
    wait_panes(nb, "stop", lambda ps: len(ps) == 3 and all(p["status"] == "streaming" and p["len"] >= 40 for p in ps),
               "three streaming panes with text", timeout=30)

    # One pane's Stop: that pane ends, the others keep streaming.
    first = STOP_MODELS[0]
    nb.grid("stop").locator(f'.llmgrid-pane[data-pane-id="{first}"] .llmgrid-pane-stop').click()
    after_one = wait_panes(nb, "stop", lambda ps: ps[0]["status"] in ENDED, "the stopped pane to end", timeout=5)
    # The others stream on (a dozen tokens or so, several flushes); the stopped one stays put.
    later = wait_panes(nb, "stop", lambda ps: all(ps[i]["len"] >= after_one[i]["len"] + 40 for i in (1, 2)),
                       "the other panes to keep streaming", timeout=10)
    assert [p["status"] for p in after_one] == ["cancelled", "streaming", "streaming"]
    assert later[0]["len"] == after_one[0]["len"], "a cancelled pane must not grow"

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


def check_kernel_interrupt_cancels_a_blocking_run_and_keeps_the_partial_text(nb: NotebookPage) -> None:
    """A blocking run has no live Stop button; the toolbar's interrupt (■) cancels every pane."""
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


#: Everything of the hostile answer that could act: script state, active elements, handlers,
#: CSS that took effect, unsafe links; and its text, which must still be shown.
HOSTILE_JS = """root => ({
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
})"""


def check_html_and_javascript_links_in_an_answer_execute_nothing(nb: NotebookPage) -> None:
    """An answer with ``<script>``, ``<img onerror>``, ``javascript:`` links (``xss=1``) is shown as inert text."""
    requests: list[str] = []
    dialogs: list[str] = []

    def off_loopback(request: Any) -> None:
        if not request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:")):
            requests.append(request.url)

    def dialog(d: Any) -> None:
        dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    nb.page.on("request", off_loopback)
    nb.page.on("dialog", dialog)
    try:
        nb.run("xss")
        nb.page.wait_for_timeout(500)  # an <img onerror> would fire once its (failing) load ends
    finally:
        nb.page.remove_listener("request", off_loopback)
        nb.page.remove_listener("dialog", dialog)

    root = nb.grid("xss")
    found = root.evaluate(HOSTILE_JS)
    assert found["flag"] == "undefined", "the answer's HTML ran script"
    assert dialogs == [], f"the answer opened dialogs: {dialogs}"
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


def check_a_blind_run_names_no_model_until_the_vote_button_is_clicked(nb: NotebookPage) -> None:
    """Letters in the page and on the wire; a click on a vote button records the vote in the kernel
    and shows the names, in the widget and in the cell's saved output."""
    nb.page.evaluate("window.__lg.watch = 'seed=3'")  # in both model ids, never in an answer
    nb.run("blind", timeout=60)
    grid = nb.grid("blind")
    grid.locator(".llmgrid-vote:not([hidden]) button").first.wait_for(timeout=10_000)
    html = nb.cell("blind").locator(".jp-OutputArea").inner_html()
    assert "seed=3" not in html and "sim/" not in html, "a model's name is in the page before the vote"
    names = grid.locator(".llmgrid-pane-name").all_inner_texts()
    assert names == ["Model A", "Model B"]
    assert grid.locator(".llmgrid-route:not([hidden])").count() == 0
    assert nb.page.evaluate("window.__lg.seen") == [], "a widget or display message named a model"
    assert "seed=3" not in saved_output(nb, "blind"), "the saved notebook names a model before the vote"
    buttons = grid.locator(".llmgrid-vote button").all_inner_texts()
    assert buttons == ["Model A is better", "Model B is better", "Tie", "Both bad"]
    grid.locator(".llmgrid-vote button", has_text="Model B is better").click()
    grid.locator(".llmgrid-vote[data-voted='true']").wait_for(timeout=10_000)
    nb.page.wait_for_function(
        "el => [...el.querySelectorAll('.llmgrid-pane-name')].every(n => n.textContent.includes('seed=3'))",
        arg=grid.element_handle(), timeout=10_000)
    # The watcher works: the names came over the wire with the vote.
    assert any(m["kind"] == "comm_msg" for m in nb.page.evaluate("window.__lg.seen"))
    nb.run("blind_dump")
    kernel = nb.read_json("blind.json")
    assert kernel["revealed"] is True and kernel["votes"] == [kernel["labels"]["Model B"]]
    shown = grid.locator(".llmgrid-pane-name").all_inner_texts()
    assert shown == [f"{label} · {name}" for label, name in kernel["labels"].items()]
    # The cell's saved output followed the vote: the static renderings now name the models.
    deadline = time.monotonic() + 10
    while "seed=30" not in saved_output(nb, "blind"):
        assert time.monotonic() < deadline, "the saved output still hides the names after the vote"
        time.sleep(0.2)


def saved_output(nb: NotebookPage, key: str) -> str:
    """Cell ``key``'s outputs as the notebook file holds them after a save (Ctrl+S), as JSON text."""
    import json

    import nbformat

    path = nb.server.root / nb.name
    before = path.stat().st_mtime_ns
    nb.cell(key).locator(".jp-InputPrompt").first.click()  # the cell, in command mode, not its output
    nb.page.keyboard.press("Control+s")
    deadline = time.monotonic() + 10
    while path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{nb.name} was not saved")
        time.sleep(0.05)
    cell = nbformat.read(path, as_version=4).cells[nb.keys.index(key)]
    return json.dumps(cell.outputs)
