"""The LiteLLM route, against the simulator over real sockets (litellm imported lazily)."""

from __future__ import annotations

import subprocess
import sys

import llmgrid_nb as lg

MODEL = "sim/steady?tokens=20&rate=200&seed=5"


def test_litellm_route_streams_the_same_text_as_the_direct_path() -> None:
    grid = lg.run("Explain SSE", [MODEL, f"litellm:{MODEL}"])
    texts = grid.texts
    assert texts[MODEL] and texts[f"litellm:{MODEL}"] == texts[MODEL]
    summary = grid.summary.set_index("source")
    assert summary.loc[f"litellm:{MODEL}", "route"] == "litellm"
    assert summary.loc[f"litellm:{MODEL}", "status"] == "done"
    assert summary.loc[f"litellm:{MODEL}", "output_tokens"] == 20


def test_litellm_errors_are_translated_by_class() -> None:
    grid = lg.run("Explain SSE", ["litellm:sim/fast?fault=http_401", "litellm:sim/fast?fault=http_404"], retries=0)
    errors = grid.summary.set_index("source").error
    assert errors["litellm:sim/fast?fault=http_401"].startswith("authentication failed (HTTP 401)")
    assert errors["litellm:sim/fast?fault=http_404"].startswith("not found (HTTP 404)")


def test_litellm_import_is_quiet_and_offline() -> None:
    code = ("import os; os.environ.pop('LITELLM_LOCAL_MODEL_COST_MAP', None);"
            "from llmgrid_nb.sources.litellm import import_litellm; import_litellm();"
            "print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"
    assert "Provider List" not in out.stdout + out.stderr
