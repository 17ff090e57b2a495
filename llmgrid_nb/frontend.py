"""Whether a front end that renders widgets shows this run: the widget there, text everywhere else.

A kernel cannot ask its front end what it renders, and one kernel may have several front ends.
What it does have is the request that is running: the ``execute_request`` of the cell, whose
reply and outputs go to whoever sent it. Its shape tells the clients apart (observed: the request
as ipykernel received it from each client, tests/test_frontend.py; source: read in the client's
code):

- JupyterLab 4's notebook (observed) and code console (source), Notebook 7 (observed), VS Code's
  notebooks and Interactive Window (source): metadata ``cellId`` (the cell's id, or its URI in VS
  Code), ``allow_stdin`` true, a UUID msg_id.
- nbclient, so ``jupyter nbconvert --execute`` (observed), papermill and Voilà (nbclient
  subclasses, source): no ``cellId``, ``allow_stdin`` **false**, msg_id ``<session>_<pid>_<n>``.
- classic Notebook 6 / nbclassic (source): no ``cellId``, ``allow_stdin`` true, a UUID msg_id.
- ``jupyter console`` (observed; qtconsole and Spyder send through the same jupyter_client
  ``execute``): no ``cellId``, ``allow_stdin`` true, msg_id ``<session>_<pid>_<n>``.

So the widget is shown when the request carries a ``cellId`` (a notebook or console built on
JupyterLab's cells, or VS Code), or allows no stdin (a headless executor whose outputs are saved
into a notebook: its saved widget view and static renderings are the point), or was not made by
jupyter_client's ``Session`` (a JavaScript front end, nbclassic among them). Text is shown for a
request from jupyter_client that has neither (``jupyter console``, qtconsole: they render no
widget), and wherever there is no kernel (terminal IPython, scripts).

Limits: the rule reads what the request says, not what the front end can do. A script that
drives a kernel with jupyter_client and allows stdin gets text, even if it would have rendered
the widget's state itself; a JavaScript front end that renders no widget gets the widget (its
static text/plain arrives when the run ends, if it shows ``update_display_data``). Message ids
made of the session id and a count are jupyter_client's since 6.0 (2020); an older client's are
UUIDs like a JavaScript front end's, and so get the widget, as before this module. Other front ends connected
to the same kernel see the requester's choice. A run started from a thread is judged by the
last request; with no request at all (or a kernel without ``get_parent``) the widget is
shown. ``widget=True/False`` and ``--no-widget`` always win.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["renders_widgets", "request_renders_widgets"]

#: The tail of jupyter_client's ``Session.msg_id`` after the session id: ``_<pid>_<count>`` since
#: 7.0, ``_<count>`` in 6.x (before 6.0, a UUID).
_JUPYTER_CLIENT_ID = re.compile(r"_(?:\d+_)?\d+")


def renders_widgets() -> bool:
    """True when the code running now was sent by a front end that renders widgets (see above)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if kernel is None:  # terminal IPython, a script: no front end at all
        return False
    return request_renders_widgets(_current_request(kernel))


def _current_request(kernel: Any) -> Mapping[str, Any] | None:
    """The shell request the kernel is handling (ipykernel's ``get_parent``), or None."""
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return None
    try:
        parent = get_parent("shell")
    except Exception:  # an unusual kernel: no evidence either way
        return None
    return parent if isinstance(parent, Mapping) else None


def request_renders_widgets(request: Mapping[str, Any] | None) -> bool:
    """Whether the client that sent ``request`` (a message: header, metadata, content) renders widgets."""
    if not request:
        return True
    header = request.get("header") or {}
    if header.get("msg_type") != "execute_request":
        return True
    metadata = request.get("metadata") or {}
    if "cellId" in metadata:
        return True
    content = request.get("content") or {}
    if content.get("allow_stdin") is False:
        return True
    return not _from_jupyter_client(header)


def _from_jupyter_client(header: Mapping[str, Any]) -> bool:
    """True when jupyter_client's ``Session`` made the message id: ``<session>_<pid>_<count>`` (or
    ``<session>_<count>``, 6.x)."""
    msg_id, session = header.get("msg_id"), header.get("session")
    if not isinstance(msg_id, str) or not isinstance(session, str) or not session:
        return False
    return msg_id.startswith(session) and _JUPYTER_CLIENT_ID.fullmatch(msg_id, len(session)) is not None
