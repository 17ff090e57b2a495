"""The Brave aggregator against the simulator's emulator over real sockets, and the master view."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.config import Secret
from llmgrid_nb.engine import get_engine
from llmgrid_nb.events import Error, FinalSynthesis, InterimAnalysis, Progress, SearchResult
from llmgrid_nb.sim import default_simulator
from llmgrid_nb.sources.base import StreamContext
from llmgrid_nb.sources.brave_search import search
from llmgrid_nb.sources.enrich import FetchError, check_url, extract_text

MODELS = ["sim/fast?tokens=20"]
SYNTH = "sim/steady?tokens=80&rate=400"


@pytest.fixture(autouse=True)
def no_brave_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    monkeypatch.delenv("BRAVE_SEARCH_API_KEY", raising=False)


def brave_events(grid: lg.Grid) -> list:
    return [e for e in grid.events if e.source == "brave" and e.kind != "status"]


def test_pipeline_emits_stages_in_order_and_cites_real_results() -> None:
    grid = lg.run("How do SSE reconnects work?", MODELS, brave=lg.Brave(synthesis_model=SYNTH, cache=False))
    events = brave_events(grid)
    kinds = [e.kind for e in events]
    assert isinstance(events[0], Progress) and events[0].stage == "analysis_started"
    queued = next(e for e in grid.events if e.source == "brave" and e.kind == "status")
    assert events[0].t_s - queued.t_s < 0.1, "first status within 100 ms"
    first_result = kinds.index("search_result")
    assert events[first_result].t_s - queued.t_s < 1.0, "first result within 1 s"
    assert max(i for i, k in enumerate(kinds) if k == "search_result") < kinds.index("interim_analysis")
    assert max(i for i, k in enumerate(kinds) if k == "interim_analysis") < kinds.index("final_synthesis")
    assert kinds[-1] == "done"
    results = [e for e in events if isinstance(e, SearchResult)]
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    batches = [e for e in events if isinstance(e, Progress) and e.stage == "batch_complete"]
    assert batches and batches[-1].done == 4 and "processing_time_s" in batches[-1].metrics
    analyses = [e.text for e in events if isinstance(e, InterimAnalysis)]
    assert len(analyses) == 4 and all(re.match(r"\[\d\] ", a) for a in analyses)
    text = grid.texts["brave"]
    cites = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert cites and all(1 <= n <= len(results) for n in cites)
    assert all(results[n - 1].url.startswith("http://127.0.0.1") for n in cites)
    row = grid.summary.set_index("source").loc["brave"]
    assert row.route == "simulated" and row.status == "done" and row.n_chunks > 0
    assert row.ttft_s > row.ttfb_s, "synthesis tokens are metered like any other stream"


def test_ssrf_guard_refuses_private_results_and_synthesis_goes_on() -> None:
    brave = lg.Brave(synthesis_model=SYNTH, params={"sim_hostile": 1}, top_k=6, cache=False)
    grid = lg.run("How do SSE reconnects work?", MODELS, brave=brave)
    refused = [e for e in brave_events(grid) if isinstance(e, Error) and e.error_type == "fetch"]
    assert len(refused) == 6 and all(": refused " in e.message and not e.fatal for e in refused)
    assert any("169.254.169.254" in e.message and "non-public address" in e.message for e in refused)
    assert grid.statuses["brave"] == "done" and grid.texts["brave"]


async def test_check_url_rules() -> None:
    for url in ("http://10.0.0.5/admin", "http://169.254.169.254/latest/meta-data", "http://127.0.0.1:9/",
                "http://[::1]/", "file:///etc/passwd", "javascript:alert(1)"):
        with pytest.raises(FetchError):
            await check_url(url)
    await check_url("http://127.0.0.1:9/x", allowed_hosts={"http://127.0.0.1:9"})
    await check_url("http://8.8.8.8/")


def test_extraction_keeps_the_article_and_drops_boilerplate() -> None:
    html = ("<html><head><title>T</title><script>evil()</script></head><body><nav>Home About</nav>"
            "<article><h1>Heading</h1><p>First paragraph.</p><script>x()</script><p>Second one.</p></article>"
            "<footer>Copyright</footer></body></html>")
    title, text = extract_text(html)
    assert title == "T" and text == "Heading\nFirst paragraph.\nSecond one."
    assert extract_text("<p>" + "a" * 50_000 + "</p>", max_chars=1000)[1] == "a" * 1000


def test_missing_key_names_the_variable() -> None:
    grid = lg.run("q", MODELS, brave=lg.Brave(base_url="http://127.0.0.1:9", synthesis_model=SYNTH), retries=0)
    assert grid.summary.set_index("source").loc["brave"].error == (
        "no Brave Search key: set BRAVE_API_KEY (or BRAVE_SEARCH_API_KEY) or pass api_key=")


def test_bad_key_shows_the_apis_own_message() -> None:
    brave = lg.Brave(api_key="invalid", base_url=default_simulator().url, synthesis_model=SYNTH, cache=False)
    grid = lg.run("q", MODELS, brave=brave, retries=0)
    error = grid.summary.set_index("source").loc["brave"].error
    assert "HTTP 422 SUBSCRIPTION_TOKEN_INVALID" in error and "check BRAVE_API_KEY" in error


def _search(url: str, q: str, key: str = "k", use_cache: bool = False):  # type: ignore[no-untyped-def]
    engine = get_engine()
    ctx = StreamContext("t", time.monotonic(), engine.pool, 5.0)
    return engine.submit(search(ctx, q, base_url=url, key=Secret(key), count=3, use_cache=use_cache)).result(30)


def test_429_is_waited_out_using_the_reset_header(scripted: ScriptedServer) -> None:
    limited = json.dumps({"type": "ErrorResponse", "error": {"status": 429, "code": "RATE_LIMITED",
                                                             "detail": "Request rate limit exceeded for plan."}})
    ok = json.dumps({"query": {"original": "q"}, "web": {"results": [{"title": "A", "url": "https://a.example/",
                                                                      "description": "<strong>a</strong>"}]}})
    headers = {"Content-Type": "application/json", "X-RateLimit-Remaining": "0, 10", "X-RateLimit-Reset": "1, 99"}
    scripted.scripts += [Script(status="429 Too Many Requests", headers=headers, body=[limited.encode()]),
                         Script(headers={**headers, "X-RateLimit-Remaining": "1, 9"}, body=[ok.encode()])]
    t = time.monotonic()
    response = _search(scripted.url, "q", key="fresh-key-429")
    assert time.monotonic() - t >= 0.9
    assert [r.url for r in response.results] == ["https://a.example/"]
    assert response.results[0].text == "a"
    assert b"X-Subscription-Token: fresh-key-429" in scripted.requests[0]
    assert b"q=q&count=3&offset=0" in scripted.requests[0]


def test_identical_queries_are_cached_for_the_session() -> None:
    url = default_simulator().url
    first = _search(url, "caching question", key="cache-key", use_cache=True)
    t = time.monotonic()
    second = _search(url, "caching question", key="cache-key", use_cache=True)
    assert second.cached and not first.cached and time.monotonic() - t < 0.1
    assert second.results == first.results


def test_master_view_reconciles_the_panes_after_they_finish() -> None:
    models = ["sim/fast?tokens=30", "sim/steady?tokens=20&rate=200", "sim/fast?tokens=10&fault=reset&after=3"]
    grid = lg.run("How do SSE reconnects work?", models, synthesize=SYNTH, retries=0)
    master = [e for e in grid.events if e.source == "master" and isinstance(e, FinalSynthesis)]
    others_end = max(e.t_s for e in grid.events if e.source != "master" and e.kind == "status")
    assert master and master[0].t_s > others_end
    row = grid.summary.set_index("source").loc["master"]
    assert row.status == "done" and row.route == "master" and row.output_tokens == 80
    assert re.search(r"\[[123]\]", grid.texts["master"])


@pytest.mark.network
@pytest.mark.skipif(not (os.environ.get("BRAVE_API_KEY") or os.environ.get("BRAVE_SEARCH_API_KEY")),
                    reason="set BRAVE_API_KEY to run one real Brave Search query")
def test_one_real_brave_query() -> None:  # pragma: no cover - needs a key and the internet
    response = _search("https://api.search.brave.com", "server-sent events reconnect",
                       key=os.environ.get("BRAVE_API_KEY") or os.environ["BRAVE_SEARCH_API_KEY"])
    assert response.results and response.results[0].url.startswith("http")


def test_incremental_master_adds_a_section_as_each_pane_finishes() -> None:
    models = ["sim/fast?tokens=10", "sim/steady?tokens=20&rate=100", "sim/steady?tokens=10&rate=8&ttft=0.1"]
    master = lg.MasterSynthesis("sim/fast?tokens=30&rate=600", incremental=True)
    grid = lg.run("How do SSE reconnects work?", models, synthesize=master)
    text = grid.texts["master"]
    assert text.count("### After ") == 1 and text.count("### With all answers") == 1
    ends = sorted(e.t_s for e in grid.events if e.source != "master" and e.kind == "status"
                  and e.state in ("done", "failed", "cancelled"))
    first_token = next(e.t_s for e in grid.events if e.source == "master" and isinstance(e, FinalSynthesis))
    assert ends[0] < first_token < ends[-1], "the first section starts before the last pane ends"
    row = grid.summary.set_index("source").loc["master"]
    assert row.status == "done" and row.ttft_s > 0 and row.e2e_s > row.ttft_s
