"""The grid in real Jupyter Notebook 7 and Chromium: live streaming, Stop, kernel interrupt, sanitising.

Notebook 7 puts JupyterLab's notebook and widget manager in a shell of its own (one notebook per
page, at ``/notebooks/<file>``, its own menus and plugins), so the checks every interface must
pass (``grid_checks.py``) run here too, on one notebook served by ``jupyter notebook``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser import grid_checks
from browser.jupyterlab_driver import ARTIFACTS, JupyterServer, NotebookPage, open_notebook

#: Notebook 7.6 throws this from its own bundle on every notebook page, with or without widgets
#: (its widget manager disabled too): not the grid's doing.
NOTEBOOKS_OWN_ERROR = "Cannot read properties of undefined (reading 'schema')"


def notebooks_own(exc: Any) -> bool:
    """Notebook 7's own known page error, thrown from its bundle under /static/notebook/."""
    return bool(exc.message == NOTEBOOKS_OWN_ERROR and "/static/notebook/" in (exc.stack or ""))


@pytest.fixture(scope="module")
def nb(browser: Any, notebook7: JupyterServer) -> Iterator[NotebookPage]:
    with open_notebook(browser, notebook7, "grid.ipynb", grid_checks.CELLS,
                       viewport={"width": 1500, "height": 1000}) as notebook:
        notebook.run("setup", timeout=90)
        assert "llmgrid ready" in notebook.output_text("setup"), notebook.all_outputs()
        yield notebook


@pytest.fixture(autouse=True)
def _fresh_log(nb: NotebookPage) -> Iterator[None]:
    nb.wait_idle(30)
    nb.page.evaluate("window.__lg.reset()")
    nb.page_errors.clear()
    yield
    assert grid_checks.unexpected_page_errors(nb, known=notebooks_own) == [], "uncaught errors in the page"


def test_the_page_is_notebook_7s(nb: NotebookPage) -> None:
    # Notebook 7's shell (its #top-panel, one notebook per page), not JupyterLab's.
    assert nb.page.locator("#top-panel #jp-NotebookLogo").count() == 1
    assert nb.page.locator("#jp-top-panel, .jp-LabShell").count() == 0
    assert nb.page.evaluate("document.body.dataset.notebook") == "notebooks"


def test_three_panes_stream_live_and_end_with_the_kernels_text(nb: NotebookPage) -> None:
    grid_checks.check_panes_stream_live_and_end_with_the_kernels_text(nb, screenshot=ARTIFACTS / "notebook7-grid.png")


def test_stop_buttons_cancel_within_a_second_and_keep_the_partial_text(nb: NotebookPage) -> None:
    grid_checks.check_stop_buttons_cancel_within_a_second_and_keep_the_partial_text(nb)


def test_kernel_interrupt_cancels_a_blocking_run_and_keeps_the_partial_text(nb: NotebookPage) -> None:
    grid_checks.check_kernel_interrupt_cancels_a_blocking_run_and_keeps_the_partial_text(nb)


def test_html_and_javascript_links_in_an_answer_execute_nothing(nb: NotebookPage) -> None:
    grid_checks.check_html_and_javascript_links_in_an_answer_execute_nothing(nb)


def test_a_blind_run_names_no_model_until_the_vote_button_is_clicked(nb: NotebookPage) -> None:
    grid_checks.check_a_blind_run_names_no_model_until_the_vote_button_is_clicked(nb)
