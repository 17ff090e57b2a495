"""The grid in real JupyterLab and Chromium: live streaming, Stop, kernel interrupt, sanitising.

One notebook (one kernel) serves every test; each test runs its own cells and reads what the
kernel holds from a JSON file a cell writes. Pane ids are the model strings, distinct per test.
The checks every interface must pass are in ``grid_checks.py`` (Notebook 7 runs them too).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from browser import grid_checks
from browser.grid_checks import INERT_JS, assert_dom_matches_kernel, wait_panes
from browser.jupyterlab_driver import ARTIFACTS, JupyterServer, NotebookPage, open_notebook, utf16_len

BIG_MODEL = "sim/instant?tokens=25000&seed=11"
LATE_MODEL = "sim/steady?tokens=900&rate=40&seed=13"
FOLLOW_MODEL = "sim/steady?tokens=2500&rate=200&seed=14"
EIGHT_MODELS = [f"sim/steady?tokens=1600&rate=200&jitter=0&seed={20 + i}" for i in range(8)]

CELLS = {
    **grid_checks.CELLS,
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


@pytest.fixture(scope="module")
def nb(browser: Any, lab: JupyterServer) -> Iterator[NotebookPage]:
    with open_notebook(browser, lab, "grid.ipynb", CELLS, viewport={"width": 1500, "height": 1000}) as notebook:
        notebook.run("setup", timeout=90)
        assert "llmgrid ready" in notebook.output_text("setup"), notebook.all_outputs()
        yield notebook


@pytest.fixture(autouse=True)
def _fresh_log(nb: NotebookPage) -> Iterator[None]:
    nb.wait_idle(30)
    nb.page.evaluate("window.__lg.reset()")
    nb.page_errors.clear()
    yield
    assert grid_checks.unexpected_page_errors(nb) == [], "uncaught errors in the page"


def test_three_panes_stream_live_and_end_with_the_kernels_text(nb: NotebookPage) -> None:
    grid_checks.check_panes_stream_live_and_end_with_the_kernels_text(nb, screenshot=ARTIFACTS / "grid.png")


def test_stop_buttons_cancel_within_a_second_and_keep_the_partial_text(nb: NotebookPage) -> None:
    grid_checks.check_stop_buttons_cancel_within_a_second_and_keep_the_partial_text(nb)


def test_kernel_interrupt_cancels_a_blocking_run_and_keeps_the_partial_text(nb: NotebookPage) -> None:
    grid_checks.check_kernel_interrupt_cancels_a_blocking_run_and_keeps_the_partial_text(nb)


def test_html_and_javascript_links_in_an_answer_execute_nothing(nb: NotebookPage) -> None:
    grid_checks.check_html_and_javascript_links_in_an_answer_execute_nothing(nb)


def test_search_snippets_with_html_are_inert(nb: NotebookPage) -> None:
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


def test_a_100_kb_answer_renders_fully_and_the_page_stays_responsive(nb: NotebookPage) -> None:
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


def test_a_view_opened_mid_run_asks_for_the_text_it_missed_and_catches_up(nb: NotebookPage) -> None:
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


def test_a_streaming_pane_follows_the_answer_until_the_user_scrolls_up(nb: NotebookPage) -> None:
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


def test_every_pane_follows_its_answer_to_the_end_when_eight_stream_at_once(nb: NotebookPage) -> None:
    nb.run("eight", timeout=60)  # 8 s of 200 tokens/s in each pane
    bodies = nb.grid("eight").locator(".llmgrid-pane-body")
    assert bodies.count() == 8
    nb.page.wait_for_timeout(300)
    below = [bodies.nth(i).evaluate(SCROLL_JS)["below"] for i in range(8)]
    assert all(px <= 30 for px in below), f"panes stopped following their answer (px below the view): {below}"



def test_a_blind_run_names_no_model_until_the_vote_button_is_clicked(nb: NotebookPage) -> None:
    grid_checks.check_a_blind_run_names_no_model_until_the_vote_button_is_clicked(nb)
