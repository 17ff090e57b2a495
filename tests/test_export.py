"""CSV/Parquet round trips and the self-contained, escaped HTML report, on real simulator runs."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hand_made import ANSWER, ERROR, PARTIAL, STARTED_AT, hand_made_run, history_of  # noqa: E402
from scripted_server import Script, ScriptedServer  # noqa: E402

import llmgrid_nb as lg  # noqa: E402
from llmgrid_nb.export import ExportedFiles, html_report, read_exported, to_csv, to_parquet  # noqa: E402
from llmgrid_nb.report import text_report  # noqa: E402

FAST = "sim/fast?tokens=30"
STEADY = "sim/steady?tokens=20&rate=200"
FAILING = "sim/steady?tokens=20&fault=reset&after=5"
XSS = "sim/fast?tokens=60&xss=1"


@pytest.fixture(scope="module")
def grid() -> lg.Grid:
    return lg.run("Explain SSE", [FAST, STEADY, FAILING], widget=False)


@pytest.fixture(scope="module")
def xss_grid() -> lg.Grid:
    return lg.run("Explain SSE <b>bold</b> & 'quotes'", [XSS, FAILING], widget=False)


REFUSAL = ["I can't help with that. ", "<script>alert(1)</script><img src=x onerror=alert(2)>"]


@pytest.fixture(scope="module")
def refusal_grid() -> Iterator[lg.Grid]:
    """A model that refuses in two deltas (OpenAI's ``delta.refusal``) beside one that answers."""
    def sse(delta: dict[str, object], finish: str | None = None) -> bytes:
        return f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n".encode()

    server = ScriptedServer()
    server.scripts.append(Script(body=[sse({"refusal": REFUSAL[0]}), 0.05, sse({"refusal": REFUSAL[1]}),
                                       sse({}, "stop"), b"data: [DONE]\n\n"]))
    try:
        yield lg.run("Write an exploit", [lg.OpenAICompatible("m", server.url + "/v1", name="refuser"), FAST],
                     widget=False)
    finally:
        server.close()


class _Page(HTMLParser):
    """Every tag with its attributes, and the text inside each element of a given class."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in ("meta", "img", "br", "link", "input"):
            cls = attributes.get("class")
            self._open.append(cls)
            if cls:
                self.texts.setdefault(cls, []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("meta", "img", "br", "link", "input") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for cls in self._open:
            if cls:
                self.texts[cls][-1] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


# -- CSV and Parquet --------------------------------------------------------------------------


@pytest.mark.parametrize("write", [to_csv, to_parquet])
def test_files_read_back_as_equal_dataframes(grid: lg.Grid, tmp_path: Path, write) -> None:
    files = write(grid, tmp_path)
    assert isinstance(files, ExportedFiles)
    assert files.chunks.exists() and files.summary.exists()
    assert grid.run_id in files.chunks.name and files.chunks.parent == tmp_path
    back = read_exported(files)
    pd.testing.assert_frame_equal(back.chunks, grid.chunks, check_exact=True)
    pd.testing.assert_frame_equal(back.summary, grid.summary, check_exact=True)


def test_csv_is_plain_csv_with_the_dataframe_columns(grid: lg.Grid, tmp_path: Path) -> None:
    chunks_path, summary_path = to_csv(grid, tmp_path / "new" / "folder", prefix="sse")
    assert chunks_path.name == "sse-chunks.csv" and summary_path.name == "sse-summary.csv"
    plain = pd.read_csv(summary_path)
    assert list(plain.columns) == list(grid.summary.columns)
    assert list(plain["source"]) == list(grid.summary["source"])


def test_csv_keeps_token_text_that_looks_like_a_missing_value(tmp_path: Path) -> None:
    grid = lg.run("Explain SSE", ["sim/fast?tokens=12"], widget=False)
    chunks = grid.chunks.copy()
    chunks.loc[chunks.index[:4], "text"] = ["NA", "null", "", "nan"]
    history = lg.History(chunks, grid.summary)
    back = read_exported(to_csv(history, tmp_path))
    assert list(back.chunks["text"][:4]) == ["NA", "null", "", "nan"]
    pd.testing.assert_frame_equal(back.chunks, chunks)


def test_several_runs_with_their_prompts_round_trip(grid: lg.Grid, xss_grid: lg.Grid, tmp_path: Path) -> None:
    def framed(frames: list[pd.DataFrame], grids: list[lg.Grid]) -> pd.DataFrame:
        with_prompt = [f.assign(prompt=pd.Series([g.prompt] * len(f), index=f.index, dtype="string"))
                       for f, g in zip(frames, grids)]
        return pd.concat(with_prompt, ignore_index=True)

    grids = [grid, xss_grid]
    runs = lg.History(framed([g.chunks for g in grids], grids), framed([g.summary for g in grids], grids))
    for write in (to_csv, to_parquet):
        files = write(runs, tmp_path)
        assert files.chunks.name.startswith("llmgrid-history-chunks.")
        back = read_exported(files)
        pd.testing.assert_frame_equal(back.chunks, runs.chunks, check_exact=True)
        pd.testing.assert_frame_equal(back.summary, runs.summary, check_exact=True)
    assert set(back.summary["prompt"]) == {grid.prompt, xss_grid.prompt}


# -- the HTML report ----------------------------------------------------------------------------


def test_report_is_self_contained(grid: lg.Grid) -> None:
    page = html_report(grid)
    parsed = _parse(page)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "action", "data", "poster", "srcset"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "javascript:")), (tag, name, value)
    images = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 1
    src = images[0]["src"] or ""
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    # Outside escaped text, nothing names a remote resource at all.
    assert "http://" not in page and "https://" not in page
    csp = [attrs for tag, attrs in parsed.tags
           if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    assert "<style>" in page


def test_report_shows_run_prompt_table_answers_and_errors(grid: lg.Grid) -> None:
    page = html_report(grid)
    parsed = _parse(page)
    assert grid.run_id in page
    assert parsed.texts["prompt"] == ["Explain SSE"]
    answers = parsed.texts["answer"]
    assert answers == [grid.texts[FAST], grid.texts[STEADY], grid.texts[FAILING]]
    errors = parsed.texts["error"]
    assert errors == [grid.summary.set_index("source").loc[FAILING, "error"]]
    assert "partial answer" in page
    cells = [tag for tag, attrs in parsed.tags if tag == "td"]
    assert len(cells) == 3 * 14
    assert parsed.texts["status-failed"].count("failed") >= 1


def test_report_escapes_model_output(xss_grid: lg.Grid) -> None:
    text = xss_grid.texts[XSS]
    assert "<script>" in text and "onerror" in text  # the payload is really there
    page = html_report(xss_grid)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    parsed = _parse(page)
    tags = [tag for tag, _ in parsed.tags]
    assert not {"script", "svg", "iframe", "a", "object", "embed"} & set(tags)
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    assert not any("style" in attrs for _, attrs in parsed.tags)
    assert tags.count("img") == 1 and tags.count("style") == 1  # the chart and the report's own CSS
    assert "tracker.example" not in "".join(str(v) for _, attrs in parsed.tags for v in attrs.values())
    assert parsed.texts["answer"][0] == text  # escaped, so it reads back exactly
    assert parsed.texts["prompt"] == ["Explain SSE <b>bold</b> & 'quotes'"]
    assert "b" not in [tag for tag, _ in parsed.tags]


def test_report_shows_a_refusal_escaped_and_not_as_a_missing_answer(refusal_grid: lg.Grid) -> None:
    assert refusal_grid.statuses == {"refuser": "done", FAST: "done"} and refusal_grid.texts["refuser"] == ""
    page = html_report(refusal_grid)
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    parsed = _parse(page)
    assert parsed.texts["refusal"] == ["".join(REFUSAL)]  # escaped, so it reads back exactly
    assert not {"script", "svg"} & {tag for tag, _ in parsed.tags}
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    assert parsed.texts["answer"] == [refusal_grid.texts[FAST]]  # the answering model has no refusal
    assert "no answer text" not in page


def test_text_report_shows_a_refusal_above_the_answer(refusal_grid: lg.Grid) -> None:
    lines = text_report(refusal_grid).splitlines()
    at = lines.index(f"[refusal] {''.join(REFUSAL)}")
    assert lines[at - 1].startswith("── refuser · done")
    assert sum(line.startswith("[refusal]") for line in lines) == 1


def test_report_is_written_to_a_file_when_asked(grid: lg.Grid, tmp_path: Path) -> None:
    path = tmp_path / "run.html"
    page = html_report(grid, path)
    assert path.read_text(encoding="utf-8") == page


def test_report_never_contains_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-0123456789abcdef-not-a-real-key"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    grid = lg.run(f"My key is {key}, explain SSE", ["sim/fast?tokens=10"], widget=False)
    page = html_report(grid)
    assert key not in page
    assert key not in html.unescape(page)
    assert "***" in page


def test_report_of_a_run_from_the_history(grid: lg.Grid) -> None:
    page = html_report(lg.history(), run_id=grid.run_id)
    parsed = _parse(page)
    assert parsed.texts["prompt"] == ["Explain SSE"]
    assert parsed.texts["answer"] == [grid.texts[FAST], grid.texts[STEADY], grid.texts[FAILING]]
    with pytest.raises(ValueError, match="no run"):
        html_report(lg.history(), run_id="not-a-run")


# -- cost in the reports ----------------------------------------------------------------------

PRICED = "sim/steady?tokens=20&rate=400&ttft=0.01&price_in=150&price_out=600"


@pytest.fixture(scope="module")
def cost_grid() -> Iterator[lg.Grid]:
    """A simulated price, a price from LiteLLM's map (gpt-4o-mini's reported usage), and no price."""
    usage = {"prompt_tokens": 14, "completion_tokens": 30}
    server = ScriptedServer()
    server.scripts.append(Script(body=[
        f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': 'Hello'}}]})}\n\n".encode(),
        f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n".encode(),
        f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode(), b"data: [DONE]\n\n"]))
    try:
        yield lg.run("Explain SSE", [PRICED, lg.OpenAICompatible("gpt-4o-mini", server.url + "/v1"), FAST],
                     widget=False)
    finally:
        server.close()


def test_html_report_shows_each_panes_cost_and_the_total(cost_grid: lg.Grid) -> None:
    from llmgrid_nb.cost import format_usd

    summary = cost_grid.summary.set_index("source")
    sim_cost, table_cost = summary.loc[PRICED, "cost_usd"], summary.loc["gpt-4o-mini", "cost_usd"]
    assert summary.loc["gpt-4o-mini", "cost_source"] == "price-table" and pd.isna(summary.loc[FAST, "cost_usd"])
    page = html_report(cost_grid)
    parsed = _parse(page)
    assert PRICED in parsed.texts["text"]  # the source cells
    assert f"<td>{html.escape(format_usd(sim_cost, 'simulated'))}</td>" in page
    assert f"<td>{format_usd(table_cost)}</td>" in page
    figures = parsed.texts["figures"]
    assert any(f"{format_usd(sim_cost, 'simulated')} (simulated: simulator model options)" in f for f in figures)
    assert any("(price-table: litellm " in f and "price map)" in f for f in figures)
    (total,) = parsed.texts["meta cost-total"]
    assert total.startswith(f"Total cost {format_usd(sim_cost + table_cost, 'simulated')} (2 of 3 panes")
    assert "not a real cost" in total


def test_text_report_shows_each_panes_cost_and_the_total(cost_grid: lg.Grid) -> None:
    from llmgrid_nb.cost import format_usd

    summary = cost_grid.summary.set_index("source")
    lines = text_report(cost_grid).splitlines()
    heads = {line.split(" · ")[0][3:]: line for line in lines if line.startswith("── ")}
    assert f"· {format_usd(summary.loc[PRICED, 'cost_usd'], 'simulated')} " in heads[PRICED]
    assert f"· {format_usd(summary.loc['gpt-4o-mini', 'cost_usd'])} " in heads["gpt-4o-mini"]
    assert "$" not in heads[FAST]
    total = summary.cost_usd.sum()
    assert f"total cost {format_usd(total, 'simulated')} (2 of 3 panes have a known cost)" in text_report(cost_grid)


def test_a_report_without_cost_columns_still_renders(grid: lg.Grid) -> None:
    from llmgrid_nb.history import History

    old = grid.summary.drop(columns=["cost_usd", "input_cost_usd", "output_cost_usd", "cost_source", "price_source"])
    page = html_report(History(grid.chunks, old.assign(prompt="Explain SSE")), run_id=grid.run_id)
    assert "cost-total" not in page and _parse(page).texts["answer"][0] == grid.texts[FAST]


# -- plain values: no Grid behind them --------------------------------------------------------------


@pytest.mark.parametrize("write", [to_csv, to_parquet])
def test_a_hand_made_run_is_written_and_read_back_without_a_grid(tmp_path: Path, write) -> None:
    run = hand_made_run()
    files = write(run, tmp_path)
    assert files.chunks.name.startswith("llmgrid-hand1-chunks.")
    back = read_exported(files)
    pd.testing.assert_frame_equal(back.chunks, run.chunks, check_exact=True)
    pd.testing.assert_frame_equal(back.summary, run.summary, check_exact=True)


def test_the_report_of_a_hand_made_run_shows_its_prompt_answers_error_and_version() -> None:
    page = html_report(hand_made_run())
    parsed = _parse(page)
    assert parsed.texts["prompt"] == ["Explain SSE <b>"]
    assert parsed.texts["answer"] == [ANSWER, PARTIAL]
    assert parsed.texts["error"] == [ERROR]
    assert any('lookup({"q": "sse"})' in t for t in parsed.texts["tool"])
    (total,) = parsed.texts["meta cost-total"]
    assert total.startswith("Total cost $0.0012 (1 of 2 panes")
    generator = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("name") == "generator"]
    assert generator == [f"llmgrid_nb {lg.__version__}"]
    assert dt.datetime.fromtimestamp(STARTED_AT, tz=dt.timezone.utc).astimezone().isoformat(timespec="seconds") in page


def test_a_history_reports_each_run_as_that_run_alone() -> None:
    first, second = hand_made_run("hand1"), hand_made_run("hand2", "Another question", started_at=STARTED_AT + 60)
    history = history_of(first, second)
    assert html_report(history, run_id="hand1") == html_report(first)
    assert html_report(history) == html_report(second)  # the last run by default
    with pytest.raises(ValueError, match="no run 'hand3'"):
        html_report(history, run_id="hand3")


def test_a_grid_is_reported_as_its_record(grid: lg.Grid) -> None:
    from llmgrid_nb.history import run_record

    assert html_report(grid) == html_report(run_record(grid)) == grid.report()
