"""A notebook that ran a grid, shared without its kernel: executed by nbconvert, its widget state
dropped as JupyterLab saves it, converted to HTML and opened in headless Chromium with the
network blocked — the answers and their figures are there, no script runs, nothing is fetched;
converted to Markdown, the answers are there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from llmgrid_nb.sim import SimServer

CELLS = [
    "%load_ext llmgrid_nb",
    '%llmgrid "How do SSE reconnects work?" --models "sim/fast?tokens=40&seed=3,sim/fast?xss=1&tokens=60,'
    'sim/fast?fault=reset&after=5&tokens=30"',
    "import json; print(json.dumps({'texts': _llmgrid.texts, 'ttft': _llmgrid.summary.set_index('source')"
    ".ttft_s.round(2).to_dict()}))",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> tuple[Path, dict[str, Any]]:
    """The notebook executed by ``jupyter nbconvert --execute``, widget state removed, and what the
    kernel said its answers and TTFTs were."""
    folder = tmp_path_factory.mktemp("exported")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    path = folder / "grid.ipynb"
    nbformat.write(nb, path)
    env = {**os.environ, "LLMGRID_SIM_URL": sim.url}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    str(path)], check=True, env=env, capture_output=True, timeout=300)
    done = nbformat.read(path, as_version=4)
    done.metadata.pop("widgets", None)  # JupyterLab saves no widget state by default
    nbformat.write(done, path)
    answer = json.loads(done.cells[2].outputs[0]["text"])
    return path, answer


def test_the_grid_cell_carries_a_static_rendering_beside_the_widget(executed: tuple[Path, dict[str, Any]]) -> None:
    path, _ = executed
    outputs = nbformat.read(path, as_version=4).cells[1].outputs
    bundles = [o for o in outputs if o.get("output_type") in ("display_data", "execute_result")]
    assert bundles, outputs
    data = bundles[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert {"text/html", "text/markdown", "text/plain"} <= set(data)
    assert "GridWidget(run_id=''" not in data["text/plain"]


def test_exported_html_shows_answers_and_figures_runs_no_script_fetches_nothing(
        executed: tuple[Path, dict[str, Any]], browser: Any) -> None:
    path, answer = executed
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)], check=True,
                   capture_output=True, timeout=120)
    page_path = path.with_suffix(".html")
    context = browser.new_context(offline=True)
    fetched: list[str] = []
    context.route("**/*", lambda route: (fetched.append(route.request.url), route.abort())
                  if not route.request.url.startswith("file://") else route.continue_())
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    static = page.locator(".llmgrid-static")
    assert static.count() == 1
    shown = static.inner_text()
    clean = next(s for s in answer["texts"] if "seed=3" in s)
    first_words = " ".join(answer["texts"][clean].split()[:6]).replace("#", "").strip()
    assert first_words.split()[0] in shown
    for source, ttft in answer["ttft"].items():
        if ttft == ttft:  # not NaN
            assert f"TTFT {ttft:.2f} s" in shown, (source, shown[:500])
    assert page.evaluate("window.__llmgrid_xss") is None and not dialogs
    assert static.locator("script, img, iframe, svg, [onerror], [onload]").count() == 0
    external = [u for u in fetched if not u.startswith(("file://", "data:"))]
    # nbconvert's own template may name a CDN (MathJax, RequireJS); none of it is ours, and the
    # page is offline: the grid's rendering must need none of it.
    assert all("llmgrid" not in u for u in external)
    context.close()


def test_exported_markdown_shows_the_answers(executed: tuple[Path, dict[str, Any]]) -> None:
    path, answer = executed
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "markdown", str(path)], check=True,
                   capture_output=True, timeout=120)
    md = path.with_suffix(".md").read_text()
    # nbconvert's Markdown takes the bundle's text/html (before text/markdown) when there is one.
    for source in answer["texts"]:
        assert source.replace("&", "&amp;") in md
    static = md.split("llmgrid-static")[1].split("</table></div>")[0]
    clean = next(s for s in answer["texts"] if "seed=3" in s)
    assert "Server-Sent Events" in answer["texts"][clean] and "Server-Sent Events" in static
    assert "<script>" not in static
