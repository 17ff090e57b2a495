"""The static outputs of a finished run: what a shared or exported notebook shows without a kernel."""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

import llmgrid_nb as lg
from llmgrid_nb.static_view import render_markdown, static_bundle

PROMPT = "How do SSE reconnects work?"


class Tags(HTMLParser):
    """Every tag and attribute in a piece of HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


def tags_of(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    return parser


def bundle(grid: lg.Grid, **kw: int) -> dict[str, str]:
    return static_bundle(grid.summary, grid.chunks, prompt=grid.prompt, status=grid.status, **kw)


@pytest.fixture(scope="module")
def grid() -> lg.Grid:
    return lg.run(PROMPT, ["sim/fast?xss=1&tokens=80", "sim/reasoning?tokens=30", "sim/tools",
                           "sim/fast?fault=reset&after=5&tokens=40"], widget=False, retries=0)


def test_hostile_answers_stay_text_and_links_are_safe(grid: lg.Grid) -> None:
    page = bundle(grid)["text/html"]
    found = tags_of(page)
    assert not {"script", "img", "iframe", "svg", "style", "object", "embed", "form", "input"} & set(found.tags)
    assert not [k for k, _ in found.attrs if k.startswith("on")]
    hrefs = [v for k, v in found.attrs if k == "href"]
    assert hrefs and all(v.startswith(("http://", "https://", "mailto:")) for v in hrefs)
    assert "&lt;script&gt;window.__llmgrid_xss=1&lt;/script&gt;" in page  # shown, as text
    assert "[image: tracking pixel]" in page  # an image is a link, never loaded


def test_every_pane_with_its_figures_reasoning_tool_call_and_error(grid: lg.Grid) -> None:
    page = bundle(grid)["text/html"]
    for row in grid.summary.itertuples():
        assert row.source.replace("&", "&amp;") in page
        assert f"TTFT {row.ttft_s:.2f} s" in page
    assert "<details><summary" in page and "Reasoning" in page
    assert "get_weather(" in page
    failed = grid.summary.set_index("source").loc["sim/fast?fault=reset&after=5&tokens=40"]
    assert failed.status == "failed" and failed.error in page.replace("&#x27;", "'")


def test_a_long_answer_is_cut_with_a_note_and_the_frames_keep_it(grid: lg.Grid) -> None:
    out = bundle(grid, max_answer_chars=50)
    assert "more characters not shown here" in out["text/html"]
    assert "more characters not shown here" in out["text/markdown"]
    assert len(grid.summary.text.iloc[0]) > 50


def test_markdown_output_keeps_formatting_and_shows_raw_html_as_text(grid: lg.Grid) -> None:
    md = bundle(grid)["text/markdown"]
    assert "### sim/reasoning?tokens=30" in md
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "](javascript:" not in md


def test_plain_text_names_every_pane_and_the_failure(grid: lg.Grid) -> None:
    plain = bundle(grid)["text/plain"]
    assert all(f"── {s} ·" in plain for s in grid.sources)
    assert "[error] the connection to" in plain


def test_a_cancelled_run_still_renders() -> None:
    run = lg.start(PROMPT, ["sim/steady?tokens=400&rate=40", "sim/fast?tokens=10"], widget=False)
    deadline = time.monotonic() + 5
    while not run.texts.get("sim/steady?tokens=400&rate=40") and time.monotonic() < deadline:
        time.sleep(0.02)
    run.cancel()
    run.wait(10)
    out = bundle(run)
    assert "cancelled" in out["text/html"] and "cancelled" in out["text/plain"]


def test_markdown_is_rendered_through_the_allow_list() -> None:
    page = render_markdown("# Title\n\n**bold** `code` [ok](https://example.org) [no](javascript:x)\n\n"
                           "| a |\n|---|\n| 1 |\n\n<b onclick=x>raw</b>")
    found = tags_of(page)
    assert {"h1", "strong", "code", "a", "table", "td"} <= set(found.tags) and "b" not in found.tags
    assert [v for k, v in found.attrs if k == "href"] == ["https://example.org"]
    assert "&lt;b onclick=x&gt;raw&lt;/b&gt;" in page


def test_search_results_of_the_brave_pane_are_listed_as_links() -> None:
    grid = lg.run(PROMPT, ["sim/fast?tokens=20"], brave=True, widget=False)
    page = bundle(grid)["text/html"]
    assert "[1] <a href=\"http" in page and "brave" in page
