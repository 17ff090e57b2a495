"""Where a grid is shown in a notebook: the live widget first, and, once the run has ended, the
same output updated in place (its display id kept) to a bundle that also carries the static
renderings, so a notebook saved without widget state (JupyterLab's default), exported by
nbconvert or shown on GitHub or nbviewer still has the answers and their figures."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .grid import Grid

__all__ = ["WIDGET_VIEW_MIME", "FinalDisplay"]

log = logging.getLogger(__name__)

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


class FinalDisplay:
    """The display of one grid's widget, updated once with the static renderings when the run ends."""

    def __init__(self, widget: Any) -> None:
        from IPython.display import display

        self.widget = widget
        self._handle = display(widget, display_id=True)
        self._lock = threading.Lock()
        self._done = False

    def finish(self, grid: Grid) -> None:
        """Update the output to the widget view plus text/html, text/markdown and text/plain
        (once; later calls do nothing). A failure here must not hide the run's result."""
        with self._lock:
            if self._done or self._handle is None:
                return
            self._done = True
        self._update(grid)

    def refresh(self, grid: Grid) -> None:
        """Update the static renderings again (a blind run's, once its names are revealed)."""
        if self._done and self._handle is not None:
            self._update(grid)

    def _update(self, grid: Grid) -> None:
        try:
            from .static_view import static_bundle

            summary, chunks = grid.shown_frames()
            bundle = static_bundle(summary, chunks, prompt=grid.prompt, status=grid.status)
            view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
            self._handle.update({WIDGET_VIEW_MIME: view, **bundle}, raw=True)
        except Exception:
            log.exception("could not update the grid's output with its static rendering")
