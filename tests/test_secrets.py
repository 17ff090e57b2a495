"""A planted API key never reaches widget state, comm messages, outputs, DataFrames, reprs,
the persistent log, exception messages, log records or warnings, whatever fails."""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import pytest
from scripted_server import Script, ScriptedServer
from test_widget import RecordingWidget

import llmgrid_nb as lg
from llmgrid_nb.report import text_report
from llmgrid_nb.sim import default_simulator
from llmgrid_nb.widget import WidgetSink

KEY = "sk-planted-SECRET-0123456789abcdefXYZ"


def test_planted_key_appears_nowhere(tmp_path: Path, scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANTED_KEY", KEY)
    base = default_simulator().openai_base
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}. You can find your key at ..."}})
    scripted.scripts.append(Script(status="401 Unauthorized", headers={"Content-Type": "application/json"},
                                   body=[echo.encode()]))
    sources = [
        lg.OpenAICompatible("m", scripted.url + "/v1", key_env=["PLANTED_KEY"], name="echoes-key"),
        *[lg.OpenAICompatible(f"steady?tokens=20&rate=300&fault={f}", base, key_env=["PLANTED_KEY"], name=f)
          for f in ("http_401", "http_500", "reset&after=3", "error_chunk&after=3", "stall&after=2&stall_s=5",
                    "malformed&after=2", "html")],
        lg.OpenAICompatible("m", "http://127.0.0.1:9/v1", api_key=KEY, name="refused"),
        lg.LiteLLM("openai/steady?tokens=5&fault=http_401", api_base=base, api_key=KEY, name="litellm-401"),
        lg.LiteLLM("openai/steady?tokens=5&fault=reset&after=2", api_base=base, api_key=KEY, name="litellm-reset"),
    ]
    brave = lg.Brave(api_key=KEY, base_url=default_simulator().url, synthesis_model="sim/fast?tokens=10",
                     cache=False)
    widget = RecordingWidget()
    caplog.set_level(logging.DEBUG)
    lg.log_to(tmp_path / "runs.sqlite")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            grid = lg.run("Explain SSE", sources, brave=brave, sinks=[WidgetSink(widget)], widget=False,
                          retries=1, stall_timeout=1.0)
    finally:
        lg.log_to(None)
    assert grid.statuses["echoes-key"] == "failed" and "***" in grid.summary.set_index("source").error["echoes-key"]
    assert grid.statuses["brave"] == "done"
    assert f"Bearer {KEY}".encode() in scripted.requests[0], "the key is sent where it belongs"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (tmp_path / "runs.sqlite").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    places = {
        "widget traffic": json.dumps(widget.traffic),
        "widget state": json.dumps([widget.panes, widget.snapshot, widget.run]),
        "chunks": grid.chunks.to_csv(),
        "summary": grid.summary.to_csv(),
        "events": repr(grid.events),
        "reprs": repr(grid) + repr(sources) + repr(brave) + repr(widget),
        "report": text_report(grid),
        "history": lg.history().summary.to_csv() + lg.history().chunks.to_csv(),
        "sqlite": (tmp_path / "runs.sqlite").read_bytes().decode("latin-1"),
        "log records": "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records),
        "warnings": "\n".join(str(w.message) for w in caught),
        "stdout/stderr": "".join(capsys.readouterr()),
    }
    for place, text in places.items():
        assert KEY not in text, f"the key leaked into {place}"
        assert KEY[10:30] not in text, f"part of the key leaked into {place}"
