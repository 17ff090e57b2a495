"""The charts of llmgrid_nb.plots, drawn from real simulator runs and checked against the DataFrames."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hand_made import hand_made_run, history_of  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import llmgrid_nb as lg  # noqa: E402
from llmgrid_nb.events import CONTENT_KINDS  # noqa: E402
from llmgrid_nb.plots import (  # noqa: E402
    plot_cumulative_tokens,
    plot_icl,
    plot_run,
    plot_throughput,
    plot_ttft,
    source_colors,
)

FAST = "sim/fast?tokens=30"
STEADY = "sim/steady?tokens=20&rate=200"
FAILING = "sim/steady?tokens=20&fault=reset&after=5"
MODELS = [FAST, STEADY, FAILING]


@pytest.fixture(scope="module")
def grid() -> lg.Grid:
    return lg.run("Explain SSE", MODELS, widget=False)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _legend_lines(ax: Axes) -> dict[str, object]:
    """Lines that carry a legend entry, by label."""
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def _tick_labels(ax: Axes) -> list[str]:
    return [t.get_text().replace("\n", "") for t in ax.get_yticklabels()]


def _content_tokens(grid: lg.Grid, source: str) -> int:
    c = grid.chunks
    return int(c[(c["source"] == source) & c["kind"].isin(CONTENT_KINDS)]["tokens"].sum())


def test_the_run_has_one_failed_source_with_partial_output(grid: lg.Grid) -> None:
    status = dict(zip(grid.summary["source"], grid.summary["status"]))
    assert status == {FAST: "done", STEADY: "done", FAILING: "failed"}
    assert grid.summary.set_index("source").loc[FAILING, "n_chunks"] == 5
    assert grid.texts[FAILING] and _content_tokens(grid, FAILING) >= 5


def test_cumulative_line_per_source_ends_at_its_token_total(grid: lg.Grid) -> None:
    ax = plot_cumulative_tokens(grid.chunks, summary=grid.summary)
    lines = _legend_lines(ax)
    assert set(lines) == {FAST, STEADY, f"{FAILING} (failed)"}
    for label, line in lines.items():
        source = label.removesuffix(" (failed)")
        y = np.asarray(line.get_ydata(), dtype=float)
        assert y[0] == 0
        assert y[-1] == _content_tokens(grid, source)
        assert np.all(np.diff(y) >= 0)
        assert line.get_drawstyle() == "steps-post"
    assert lines[f"{FAILING} (failed)"].get_linestyle() == "--"
    assert lines[FAST].get_linestyle() == "-"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "first token (TTFT)" in legend
    assert ax.get_xlabel() == "seconds since request (s)"
    assert "tokens" in ax.get_ylabel()


def test_cumulative_x_axis_is_time_since_request_with_a_dot_at_ttft(grid: lg.Grid) -> None:
    ax = plot_cumulative_tokens(grid)
    summary = grid.summary.set_index("source")
    dots = [line for line in ax.get_lines() if line.get_label() == "_ttft"]
    assert len(dots) == 3
    ttfts = sorted(float(line.get_xdata()[0]) for line in dots)
    assert ttfts == pytest.approx(sorted(summary["ttft_s"]), abs=1e-9)
    chunks = grid.chunks
    fast = chunks[(chunks["source"] == FAST) & chunks["kind"].isin(CONTENT_KINDS)]
    line = _legend_lines(ax)[FAST]
    expected = fast["t_s"].to_numpy() - summary.loc[FAST, "t_request_s"]
    assert np.asarray(line.get_xdata())[1:] == pytest.approx(expected, abs=1e-9)


def test_cumulative_from_chunks_alone_counts_from_run_start_and_spots_the_failure(grid: lg.Grid) -> None:
    ax = plot_cumulative_tokens(grid.chunks)
    assert ax.get_xlabel() == "seconds since run start (s)"
    lines = _legend_lines(ax)
    assert f"{FAILING} (failed)" in lines
    first_token_t = grid.chunks[(grid.chunks["source"] == FAST) & (grid.chunks["kind"] == "token")]["t_s"].iloc[0]
    assert lines[FAST].get_xdata()[1] == pytest.approx(first_token_t)


def test_ttft_bars_are_sorted_fastest_first_with_their_values(grid: lg.Grid) -> None:
    ax = plot_ttft(grid.summary)
    bars = ax.patches
    assert len(bars) == 3
    expected = grid.summary.sort_values("ttft_s")
    assert [b.get_width() for b in bars] == pytest.approx(list(expected["ttft_s"]))
    labels = _tick_labels(ax)
    assert [label.removesuffix(" (failed)") for label in labels] == list(expected["source"])
    assert f"{FAILING} (failed)" in labels
    # Bars are drawn top to bottom in that order.
    assert ax.yaxis_inverted()
    values = [t.get_text() for t in ax.texts]
    assert values == [f"{v * 1000:.0f} ms" for v in expected["ttft_s"]]
    assert ax.get_xlabel() == "TTFT (s)"
    assert "first token" in ax.get_title().lower()


def test_failed_source_bar_is_hatched_and_others_are_not(grid: lg.Grid) -> None:
    ax = plot_ttft(grid.summary)
    hatched = {b.get_label().removesuffix(" (failed)"): bool(b.get_hatch()) for b in ax.patches}
    assert hatched == {FAST: False, STEADY: False, FAILING: True}


def test_throughput_bars_are_decode_rates_fastest_first(grid: lg.Grid) -> None:
    ax = plot_throughput(grid.summary)
    expected = grid.summary.sort_values("decode_tokens_per_s", ascending=False)
    assert [b.get_width() for b in ax.patches] == pytest.approx(list(expected["decode_tokens_per_s"]))
    assert [t.get_text() for t in ax.texts] == [f"{v:,.0f} tok/s" for v in expected["decode_tokens_per_s"]]
    assert "tokens/s" in ax.get_xlabel()
    e2e = plot_throughput(grid.summary, metric="e2e_tokens_per_s")
    assert max(b.get_width() for b in e2e.patches) == pytest.approx(grid.summary["e2e_tokens_per_s"].max())


def test_icl_box_medians_are_the_summary_p50(grid: lg.Grid) -> None:
    ax = plot_icl(grid.chunks, summary=grid.summary, kind="box")
    labels = _tick_labels(ax)
    assert [label.removesuffix(" (failed)") for label in labels] == sorted(MODELS)
    p50 = grid.summary.set_index("source")["icl_p50_s"]
    medians = [line for line in ax.get_lines() if len(line.get_xdata()) == 2
               and line.get_xdata()[0] == line.get_xdata()[1] and to_hex(line.get_color()) == "#1a1a1a"]
    assert len(medians) == 3
    for source, line in zip(sorted(MODELS), sorted(medians, key=lambda m: np.mean(m.get_ydata()))):
        assert line.get_xdata()[0] == pytest.approx(p50[source] * 1000)
    assert ax.get_xlabel() == "gap between consecutive content chunks (ms)"


def test_icl_hist_counts_every_gap_between_content_chunks(grid: lg.Grid) -> None:
    ax = plot_icl(grid, kind="hist")
    legend = sorted(t.get_text() for t in ax.get_legend().get_texts())
    n_chunks = grid.summary.set_index("source")["n_chunks"]
    assert legend == sorted([f"{FAST} (n={n_chunks[FAST] - 1})", f"{STEADY} (n={n_chunks[STEADY] - 1})",
                             f"{FAILING} (failed) (n={n_chunks[FAILING] - 1})"])
    assert ax.get_ylabel() == "content chunks"


def test_icl_gaps_are_between_content_chunks_only(grid: lg.Grid) -> None:
    # A retried request leaves an error row before the first token: gap_s of that token is
    # measured from the error row, but it is no gap between two content chunks.
    chunks = grid.chunks
    first = chunks[chunks["source"] == FAST].iloc[[0]]
    warning = first.assign(kind="error", text="attempt 1 failed: HTTP 500", t_s=first["t_s"] - 0.2, chars=0, tokens=0)
    edited = pd.concat([warning, chunks], ignore_index=True)
    edited["gap_s"] = edited.groupby("source", sort=False)["t_s"].diff()
    ax = plot_icl(edited, kind="hist")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"{FAST} (n={30 - 1})" in legend


def test_icl_rejects_an_unknown_kind(grid: lg.Grid) -> None:
    with pytest.raises(ValueError, match="box"):
        plot_icl(grid.chunks, kind="violin")  # type: ignore[arg-type]


def test_charts_draw_into_a_given_axes(grid: lg.Grid) -> None:
    fig, axes = plt.subplots(1, 2)
    assert plot_ttft(grid.summary, ax=axes[0]) is axes[0]
    assert plot_icl(grid.chunks, ax=axes[1]) is axes[1]
    assert len(fig.axes) == 2


def test_dashboard_has_four_panels_and_one_colour_per_source(grid: lg.Grid) -> None:
    fig = plot_run(grid)
    assert isinstance(fig, Figure)
    cumulative, ttft, icl, throughput = fig.axes
    assert cumulative.get_title() == "Cumulative output tokens"
    assert "first token" in ttft.get_title().lower()
    assert "Inter-chunk latency" in icl.get_title()
    assert "Decode speed" in throughput.get_title()
    assert grid.run_id in fig.get_suptitle()
    colors = source_colors(MODELS)
    lines = _legend_lines(cumulative)
    assert to_hex(lines[STEADY].get_color()) == colors[STEADY]
    for ax in (ttft, throughput):
        by_label = {b.get_label(): b for b in ax.patches}
        assert to_hex(by_label[STEADY].get_facecolor()) == colors[STEADY]
        assert to_hex(by_label[f"{FAILING} (failed)"].get_edgecolor()) == colors[FAILING]
    assert len(set(colors.values())) == 3


def test_dashboard_draws_into_a_figure_without_pyplot(grid: lg.Grid) -> None:
    fig = plot_run(grid, fig=Figure())
    assert len(fig.axes) == 4
    assert plt.get_fignums() == []


def test_colours_can_be_pinned(grid: lg.Grid) -> None:
    ax = plot_ttft(grid.summary, colors={FAST: "#000000"})
    by_label = {b.get_label(): b for b in ax.patches}
    assert to_hex(by_label[FAST].get_facecolor()) == "#000000"


def test_a_source_that_failed_before_its_first_token_is_still_shown() -> None:
    grid = lg.run("Explain SSE", ["sim/fast?tokens=10", "sim/steady?fault=http_401"], widget=False)
    dead = "sim/steady?fault=http_401"
    ax = plot_cumulative_tokens(grid)
    lone = _legend_lines(ax)[f"{dead} (failed)"]
    assert list(lone.get_ydata()) == [0.0]
    ttft = plot_ttft(grid)
    assert _tick_labels(ttft)[-1] == f"{dead} (failed)"  # no value: sorted last
    assert [t.get_text() for t in ttft.texts][-1] == "no data"
    icl = plot_icl(grid)
    assert f"{dead} (failed) (no gaps)" in _tick_labels(icl)


def test_several_runs_draw_a_line_per_run_and_median_bars(grid: lg.Grid) -> None:
    again = lg.run("Explain SSE", MODELS, widget=False)
    history = lg.history()
    ids = {grid.run_id, again.run_id}
    both = lg.History(history.chunks[history.chunks["run_id"].isin(ids)],
                      history.summary[history.summary["run_id"].isin(ids)])
    ax = plot_cumulative_tokens(both)
    labelled = _legend_lines(ax)
    assert set(labelled) == {f"{FAST} ×2 runs", f"{STEADY} ×2 runs", f"{FAILING} (2/2 failed) ×2 runs"}
    fast_lines = [line for line in ax.get_lines()
                  if line.get_label().lstrip("_") == f"{FAST} ×2 runs"]
    assert len(fast_lines) == 2
    ttft = plot_ttft(both)
    assert len(ttft.patches) == 3
    medians = both.summary.groupby("source")["ttft_s"].median()
    widths = {label.split(" (")[0]: b.get_width() for label, b in zip(_tick_labels(ttft), ttft.patches)}
    assert widths == pytest.approx(medians.to_dict())
    assert "median" in ttft.get_title()
    fig = plot_run(both)
    assert fig.get_suptitle() == "2 runs, 6 streams"


# -- plain values: no Grid behind them --------------------------------------------------------------


def test_every_chart_reads_a_hand_made_run_without_a_grid() -> None:
    run = hand_made_run()
    fig = plot_run(run, fig=Figure())
    assert fig.get_suptitle() == "run hand1 · “Explain SSE <b>”"
    cumulative, ttft, icl, throughput = fig.axes
    lines = _legend_lines(cumulative)
    assert set(lines) == {"fast", "broken (failed)"}
    assert list(lines["fast"].get_ydata()) == [0, 1, 2, 3, 4]  # three tokens and a tool call
    assert list(lines["fast"].get_xdata()) == pytest.approx([0.0, 0.10, 0.20, 0.30, 0.35])
    assert list(lines["broken (failed)"].get_xdata()) == pytest.approx([0.0, 0.20])  # since its own request
    assert _tick_labels(ttft) == ["fast", "broken (failed)"]
    assert [b.get_width() for b in ttft.patches] == pytest.approx([0.10, 0.20])
    assert _tick_labels(icl) == ["broken (failed) (no gaps)", "fast"]
    assert [b.get_width() for b in throughput.patches] == pytest.approx([12.0, 0.0])
    assert [t.get_text() for t in throughput.texts] == ["12 tok/s", "no data"]


def test_a_chart_of_the_record_is_the_chart_of_its_frames() -> None:
    run = hand_made_run()
    for chart in (plot_ttft, plot_throughput):
        assert [b.get_width() for b in chart(run).patches] == [b.get_width() for b in chart(run.summary).patches]
    whole = _legend_lines(plot_cumulative_tokens(run))
    framed = _legend_lines(plot_cumulative_tokens(run.chunks, summary=run.summary))
    assert {k: list(v.get_xdata()) for k, v in whole.items()} == {k: list(v.get_xdata()) for k, v in framed.items()}


def test_a_history_of_hand_made_runs_charts_every_run_and_each_run_alone() -> None:
    first, second = hand_made_run("hand1"), hand_made_run("hand2", "Another question")
    history = history_of(first, second)
    assert plot_run(history, fig=Figure()).get_suptitle() == "2 runs, 4 streams"
    assert set(_legend_lines(plot_cumulative_tokens(history))) == {"fast ×2 runs", "broken (2/2 failed) ×2 runs"}
    assert plot_run(history.run("hand2"), fig=Figure()).get_suptitle() == "run hand2 · “Another question”"


def test_a_grid_draws_the_chart_of_its_record(grid: lg.Grid) -> None:
    from llmgrid_nb.history import run_record

    run = run_record(grid)
    assert (run.run_id, run.prompt) == (grid.run_id, grid.prompt)
    assert grid.plot(fig=Figure()).get_suptitle() == plot_run(run, fig=Figure()).get_suptitle()
    assert [b.get_width() for b in plot_ttft(grid).patches] == [b.get_width() for b in plot_ttft(run).patches]
