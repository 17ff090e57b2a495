"""Charts of a run's DataFrames: cumulative tokens, TTFT, inter-chunk latency, decode speed.

Every function takes the DataFrames (``grid.chunks``, ``grid.summary``, or ``lg.history()``'s),
or a value holding both (a ``RunRecord``: ``grid.record()``; a ``History``), or a Grid (read as its
record; nothing here imports the Grid), draws into ``ax=`` when given (else a new figure) and
returns the Axes (``plot_run``: the Figure). matplotlib is imported only when a chart is drawn.

Colours: each source keeps one colour in every chart (tab10 over the sorted source names, or
the ``colors=`` mapping you pass; ``plot_run`` shares one mapping across its four panels).
Failed and cancelled sources are drawn with what they produced, marked by a dashed line or a
hatched bar and "(failed)" / "(cancelled)" in their label.

Several runs (``lg.history()``): ``plot_cumulative_tokens`` draws one line per run and source
(one legend entry per source); the bar charts show the median over runs per source with
min–max whiskers; ``plot_icl`` pools the gaps of every run of a source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .events import CONTENT_KINDS
from .history import as_plain

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .history import History, Recordable, RunRecord

    #: What the charts accept: a DataFrame of the right kind, a RunRecord / History holding both,
    #: or a live run (a Grid) that gives its RunRecord.
    RunData = pd.DataFrame | RunRecord | History | Recordable

__all__ = [
    "plot_cumulative_tokens",
    "plot_icl",
    "plot_run",
    "plot_throughput",
    "plot_ttft",
    "source_colors",
]

# matplotlib's tab10, then tab20's light shades: 20 distinct colours before any repeat.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
#: Statuses drawn as "did not finish": dashed lines, hatched bars, a suffix in the label.
_MARKED = ("failed", "cancelled")
_LINESTYLE = {"failed": "--", "cancelled": ":"}
_HATCH = "//"


def source_colors(sources: Iterable[str]) -> dict[str, str]:
    """One colour per source name: the palette in sorted order of the names, so charts agree."""
    names = sorted({str(s) for s in sources})
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


# -- inputs ---------------------------------------------------------------------------------


def _frames(data: Any) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(chunks, summary) from a RunRecord, History or Grid; a bare DataFrame is returned as it is."""
    data = as_plain(data)
    if hasattr(data, "chunks") and hasattr(data, "summary"):
        return data.chunks, data.summary
    return data, None


def _chunks_of(data: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    chunks, summary = _frames(data)
    if chunks is None or "t_s" not in chunks.columns:
        raise TypeError("expected grid.chunks (a DataFrame with t_s, tokens, kind, source), a RunRecord, "
                        "a History or a Grid")
    return chunks, summary


def _summary_of(data: Any) -> pd.DataFrame:
    chunks, summary = _frames(data)
    frame = summary if summary is not None else chunks
    if frame is None or "ttft_s" not in frame.columns:
        raise TypeError("expected grid.summary (a DataFrame with source, status, ttft_s, ...), a RunRecord, "
                        "a History or a Grid")
    return frame


def _run_ids(frame: pd.DataFrame) -> Any:
    import pandas as pd

    if "run_id" in frame.columns:
        return frame["run_id"].astype("string").fillna("")
    return pd.Series([""] * len(frame), index=frame.index, dtype="string")


def _statuses(chunks: pd.DataFrame, summary: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """Status per (run_id, source): the summary's, else inferred from chunks (a final error row)."""
    out: dict[tuple[str, str], str] = {}
    if summary is not None and "status" in summary.columns:
        for run, src, status in zip(_run_ids(summary), summary["source"], summary["status"]):
            out[(str(run), str(src))] = str(status) if isinstance(status, str) else "unknown"
        return out
    runs = _run_ids(chunks)
    for (run, src), kinds in chunks["kind"].groupby([runs, chunks["source"]], sort=False):
        out[(str(run), str(src))] = "failed" if str(kinds.iloc[-1]) == "error" else "done"
    return out


def _colors(names: Iterable[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    names = list(names)
    auto = source_colors(names)
    if colors:
        auto.update({k: v for k, v in colors.items() if k in auto})
    return auto


def _label(text: str) -> str:
    """A source name as matplotlib text: ``$`` would otherwise start mathtext."""
    return text.replace("$", r"\$")


def _wrap(label: str, width: int = 28) -> str:
    """A long source label over several lines (before ``?``/``@``, after ``&``/space) for tick labels."""
    if len(label) <= width:
        return label
    lines, current = [], ""
    # Breaks keep every character (a space ends its line), so joining the lines gives the label.
    for part in re.split(r"(?=[?@])|(?<=[& ])", label):
        if current and len(current.rstrip()) + len(part) > width:
            lines.append(current)
            current = part
        else:
            current += part
    lines.append(current)
    return "\n".join(lines)


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _fmt_seconds(value: float) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"


def _fmt_rate(value: float) -> str:
    return "–" if value != value else f"{value:,.0f} tok/s"


def _suffix(statuses: list[str]) -> str:
    """" (failed)" for one run, " (2/5 failed)" for several; "" when every run finished."""
    parts = []
    for state in _MARKED:
        k = statuses.count(state)
        if k:
            parts.append(state if len(statuses) == 1 else f"{k}/{len(statuses)} {state}")
    return f" ({', '.join(parts)})" if parts else ""


def _worst(statuses: list[str]) -> str:
    for state in _MARKED:
        if state in statuses:
            return state
    return statuses[0] if statuses else "unknown"


# -- cumulative tokens ------------------------------------------------------------------------


def plot_cumulative_tokens(
    chunks: RunData,
    *,
    summary: pd.DataFrame | None = None,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """Output tokens received over time per source, as step lines, with a dot at the first token.

    The x axis is seconds since each stream's request when the summary is known (pass
    ``summary=`` or a record/History: its ``t_request_s`` aligns the streams, and the dot sits at
    ``ttft_s``); from chunks alone it is seconds since the run started. y is the running sum of
    the per-chunk ``tokens`` over content rows (token, reasoning, tool_call, final_synthesis),
    so each line ends at the stream's total in ``chunks`` (an offline count, which can differ
    by a few from ``output_tokens`` when the provider reports usage). Failed streams are dashed
    and end with an ✕; one that failed before its first token is an ✕ at zero.
    """
    import numpy as np
    import pandas as pd
    from matplotlib.lines import Line2D

    chunks, own_summary = _chunks_of(chunks)
    summary = summary if summary is not None else own_summary
    ax = _new_axes(ax, (8, 4.5))
    statuses = _statuses(chunks, summary)
    aligned = False
    t_request: dict[tuple[str, str], float] = {}
    if summary is not None and "t_request_s" in summary.columns:
        aligned = True
        for run, src, t in zip(_run_ids(summary), summary["source"], summary["t_request_s"]):
            t_request[(str(run), str(src))] = 0.0 if pd.isna(t) else float(t)

    content = chunks[chunks["kind"].isin(CONTENT_KINDS)]
    runs = _run_ids(content)
    keys = list(dict.fromkeys(statuses) | {(str(r), str(s)): None for r, s in zip(runs, content["source"])})
    palette = _colors([src for _, src in keys], colors)
    by_source: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        by_source.setdefault(key[1], []).append(key)
    groups = {(str(r), str(s)): g for (r, s), g in content.groupby([runs, content["source"]], sort=False)}

    for src in sorted(by_source):
        src_keys = by_source[src]
        states = [statuses.get(k, "unknown") for k in src_keys]
        label = _label(src) + _suffix(states) + (f" ×{len(src_keys)} runs" if len(src_keys) > 1 else "")
        color = palette[src]
        for i, key in enumerate(src_keys):
            state = statuses.get(key, "unknown")
            style = _LINESTYLE.get(state, "-")
            line_label = label if i == 0 else "_" + label
            group = groups.get(key)
            if group is None or group.empty:  # failed before its first token: a lone ✕ at zero
                ax.plot([0.0], [0.0], marker="X", linestyle="none", color=color, label=line_label)
                continue
            offset = t_request.get(key, 0.0) if aligned else 0.0
            x = group["t_s"].to_numpy(dtype=float) - offset
            y = group["tokens"].to_numpy(dtype=float).cumsum()
            ax.plot(np.concatenate(([0.0], x)), np.concatenate(([0.0], y)), drawstyle="steps-post",
                    color=color, linestyle=style, linewidth=1.6, label=line_label)
            ax.plot([x[0]], [y[0]], marker="o", markersize=5, color=color, linestyle="none", label="_ttft")
            if state in _MARKED:
                ax.plot([x[-1]], [y[-1]], marker="X", markersize=8, color=color, linestyle="none",
                        label=f"_{state}")

    ax.set_title("Cumulative output tokens")
    ax.set_xlabel("seconds since request (s)" if aligned else "seconds since run start (s)")
    ax.set_ylabel("output tokens (cumulative)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        handles.append(Line2D([], [], marker="o", color="0.2", linestyle="none", markersize=5))
        labels.append("first token (TTFT)")
        ax.legend(handles, labels, fontsize="small", loc="best")
    return ax


# -- per-source bar charts --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bar:
    source: str
    value: float  # median over runs (NaN when no run has a value)
    low: float
    high: float
    runs: int
    state: str  # the worst status over the runs: failed > cancelled > the first run's
    label: str


def _bars(summary: pd.DataFrame, column: str) -> list[_Bar]:
    import numpy as np

    out = []
    statuses = summary["status"] if "status" in summary.columns else None
    for src, group in summary.groupby(summary["source"].astype("string"), sort=True):
        values = group[column].to_numpy(dtype=float, na_value=np.nan)
        finite = values[np.isfinite(values)]
        states = [str(s) if isinstance(s, str) else "unknown"
                  for s in (statuses.loc[group.index] if statuses is not None else ["unknown"] * len(group))]
        median = float(np.median(finite)) if finite.size else float("nan")
        low = float(finite.min()) if finite.size else float("nan")
        high = float(finite.max()) if finite.size else float("nan")
        label = _label(str(src)) + _suffix(states) + (f" (n={len(group)})" if len(group) > 1 else "")
        out.append(_Bar(str(src), median, low, high, len(group), _worst(states), label))
    return out


def _bar_chart(summary: pd.DataFrame, column: str, *, ascending: bool, fmt: Any, title: str,
               xlabel: str, ax: Axes | None, colors: Mapping[str, str] | None) -> Axes:
    import numpy as np
    from matplotlib.colors import to_rgba

    bars = _bars(summary, column)
    # Best first, sources with no value last.
    bars.sort(key=lambda b: (b.value != b.value, b.value if ascending else -b.value))
    ax = _new_axes(ax, (7, 0.5 * max(len(bars), 2) + 1.4))
    palette = _colors([b.source for b in bars], colors)
    y = np.arange(len(bars))
    widths = [b.value if b.value == b.value else 0.0 for b in bars]
    container = ax.barh(y, widths, height=0.65)
    for patch, bar in zip(container.patches, bars):
        color = palette[bar.source]
        if bar.state in _MARKED:
            patch.set_facecolor(to_rgba(color, 0.35))
            patch.set_edgecolor(color)
            patch.set_hatch(_HATCH)
        else:
            patch.set_facecolor(color)
        patch.set_label(bar.label)
    if any(b.runs > 1 and b.low < b.high for b in bars):
        lo = [b.value - b.low if b.value == b.value else 0.0 for b in bars]
        hi = [b.high - b.value if b.value == b.value else 0.0 for b in bars]
        ax.errorbar(widths, y, xerr=[lo, hi], fmt="none", ecolor="0.25", capsize=3, linewidth=1)
        title = title.split(" (")[0] + " (median of runs, min–max)"
    texts = [fmt(b.value) if b.value == b.value else "no data" for b in bars]
    ax.bar_label(container, labels=texts, padding=4, fontsize="small")
    ax.set_yticks(y, [_wrap(b.label) for b in bars])
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    right = max([b.high for b in bars if b.high == b.high] + widths + [0.0])
    ax.set_xlim(0, right * 1.25 if right > 0 else 1.0)  # room for the value labels
    ax.grid(True, axis="x", alpha=0.3)
    return ax


def plot_ttft(summary: RunData, *, ax: Axes | None = None, colors: Mapping[str, str] | None = None) -> Axes:
    """Time to first token per source: horizontal bars, fastest on top, each labelled with its value."""
    return _bar_chart(_summary_of(summary), "ttft_s", ascending=True, fmt=_fmt_seconds,
                      title="Time to first token (lower is better)", xlabel="TTFT (s)", ax=ax,
                      colors=colors)


def plot_throughput(
    summary: RunData,
    *,
    metric: Literal["decode_tokens_per_s", "e2e_tokens_per_s"] = "decode_tokens_per_s",
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """Output tokens per second per source, fastest on top (``decode``: 1/TPOT; ``e2e``: N/e2e)."""
    titles = {
        "decode_tokens_per_s": ("Decode speed (higher is better)", "decode tokens/s (1 / TPOT)"),
        "e2e_tokens_per_s": ("End-to-end speed (higher is better)", "output tokens / e2e time (tokens/s)"),
    }
    if metric not in titles:
        raise ValueError(f"metric must be one of {sorted(titles)}, got {metric!r}")
    title, xlabel = titles[metric]
    return _bar_chart(_summary_of(summary), metric, ascending=False, fmt=_fmt_rate, title=title,
                      xlabel=xlabel, ax=ax, colors=colors)


# -- inter-chunk latency -------------------------------------------------------------------------


def _content_gaps(chunks: pd.DataFrame) -> dict[str, Any]:
    """Gaps between consecutive content chunks of each stream (seconds), pooled per source.

    The same gaps as the summary's icl_* columns: ``gap_s`` of content rows when no other row
    (a usage chunk, a warning) sits between two content chunks of a stream.
    """
    import numpy as np

    content = chunks[chunks["kind"].isin(CONTENT_KINDS)]
    runs = _run_ids(content)
    gaps = content["t_s"].groupby([runs, content["source"]], sort=False).diff()
    out: dict[str, Any] = {}
    for src, values in gaps.groupby(content["source"].astype("string"), sort=True):
        arr = values.to_numpy(dtype=float, na_value=np.nan)
        out[str(src)] = arr[np.isfinite(arr)]
    return out


def plot_icl(
    chunks: RunData,
    *,
    kind: Literal["box", "hist"] = "box",
    summary: pd.DataFrame | None = None,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
    log: bool | None = None,
    stall_threshold: float | None = 1.0,
) -> Axes:
    """Inter-chunk latency per source: a box plot or overlaid histograms of content gaps, in ms.

    ``log=None`` picks a log axis when the gaps span more than 30×. Gaps of zero (chunks parsed
    from one network read) are drawn at 1 µs on a log axis. A dotted line marks
    ``stall_threshold`` when some gap comes near it.
    """
    import numpy as np

    if kind not in ("box", "hist"):
        raise ValueError(f"kind must be 'box' or 'hist', got {kind!r}")
    chunks, own_summary = _chunks_of(chunks)
    summary = summary if summary is not None else own_summary
    statuses = _statuses(chunks, summary)
    by_source: dict[str, list[str]] = {}
    for (_, src), state in statuses.items():
        by_source.setdefault(src, []).append(state)
    gaps = {src: arr * 1000.0 for src, arr in _content_gaps(chunks).items()}
    names = sorted(set(gaps) | set(by_source))
    palette = _colors(names, colors)
    ax = _new_axes(ax, (8, 0.55 * max(len(names), 2) + 1.6) if kind == "box" else (8, 4.5))

    nonempty = [arr for arr in gaps.values() if arr.size]
    all_gaps = np.concatenate(nonempty) if nonempty else np.array([])
    if log is None:
        positive = all_gaps[all_gaps > 0]
        log = bool(positive.size and positive.max() / positive.min() > 30)
    floor = 1e-3  # ms
    labels = {src: _label(src) + _suffix(by_source.get(src, [])) for src in names}

    if kind == "box":
        rows = [(i, src) for i, src in enumerate(names) if gaps.get(src, np.array([])).size]
        if rows:
            data = [np.maximum(gaps[src], floor) if log else gaps[src] for _, src in rows]
            parts = _boxplot(ax, data, [i for i, _ in rows])
            for patch, (_, src) in zip(parts["boxes"], rows):
                color = palette[src]
                patch.set_facecolor(color)
                patch.set_alpha(0.55)
                patch.set_edgecolor(color)
                if _worst(by_source.get(src, [])) in _MARKED:
                    patch.set_hatch(_HATCH)
            for median in parts["medians"]:
                median.set_color("0.1")
        ax.set_yticks(range(len(names)),
                      [_wrap(labels[s] + ("" if gaps.get(s, np.array([])).size else " (no gaps)"))
                       for s in names])
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_xlabel("gap between consecutive content chunks (ms)")
        ax.grid(True, axis="x", alpha=0.3)
    else:
        if all_gaps.size:
            lo, hi = max(all_gaps.min(), floor) if log else all_gaps.min(), all_gaps.max()
            hi = max(hi, lo * 1.01 if lo > 0 else lo + 1e-3)
            bins = np.geomspace(lo, hi, 40) if log else np.linspace(lo, hi, 40)
            for src in names:
                arr = gaps.get(src, np.array([]))
                if not arr.size:
                    continue
                state = _worst(by_source.get(src, []))
                ax.hist(np.maximum(arr, floor) if log else arr, bins=bins, histtype="step",
                        linewidth=1.6, color=palette[src], linestyle=_LINESTYLE.get(state, "-"),
                        label=f"{labels[src]} (n={arr.size})")
        ax.set_xlabel("gap between consecutive content chunks (ms)")
        ax.set_ylabel("content chunks")
        ax.grid(True, alpha=0.3)
    if log:
        ax.set_xscale("log")
    if stall_threshold and all_gaps.size and all_gaps.max() >= 500.0 * stall_threshold:
        ax.axvline(stall_threshold * 1000.0, color="0.35", linestyle=":", linewidth=1.2,
                   label=f"stall threshold ({stall_threshold:g} s)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="best")
    ax.set_title("Inter-chunk latency" + (" (log scale)" if log else ""))
    return ax


def _boxplot(ax: Axes, data: list[Any], positions: list[int]) -> dict[str, Any]:
    """Horizontal box plot across matplotlib versions (``vert=`` became ``orientation=`` in 3.10)."""
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    kwargs: dict[str, Any] = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    return ax.boxplot(data, positions=positions, widths=0.6, patch_artist=True, manage_ticks=False,
                      flierprops={"markersize": 3, "alpha": 0.6}, **kwargs)


# -- the dashboard ---------------------------------------------------------------------------------


def plot_run(
    grid: RunRecord | History | Recordable,
    *,
    fig: Figure | None = None,
    figsize: tuple[float, float] = (14, 9),
    title: str | None = None,
) -> Figure:
    """A 2×2 dashboard of a run (a RunRecord or a Grid, or a History of several): the four charts above.

    The title defaults to the run id and prompt (one run), or the number of runs and streams
    (a History). Pass an empty ``fig`` (e.g. ``matplotlib.figure.Figure()``) to draw without pyplot.
    """
    run = as_plain(grid)
    chunks, summary = _frames(run)
    if chunks is None or summary is None:
        raise TypeError("plot_run takes a RunRecord, a History or a Grid (something with .chunks and .summary)")
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize, layout="constrained")
    else:
        fig.set_size_inches(*figsize)
        fig.set_layout_engine("constrained")
    colors = source_colors(list(summary["source"].astype(str)) + list(chunks["source"].astype(str)))
    axes = fig.subplots(2, 2)
    plot_cumulative_tokens(chunks, summary=summary, ax=axes[0, 0], colors=colors)
    plot_ttft(summary, ax=axes[0, 1], colors=colors)
    plot_icl(chunks, summary=summary, ax=axes[1, 0], colors=colors)
    plot_throughput(summary, ax=axes[1, 1], colors=colors)
    fig.suptitle(_label(title) if title is not None else _run_title(run, summary))
    return fig


def _prompt_title(run_id: str, prompt: str) -> str:
    """"run <id> · “<prompt>”", the prompt on one line and cut at 90 characters."""
    short = " ".join(prompt.split())
    short = short if len(short) <= 90 else short[:89] + "…"
    return f"run {run_id} · “{short}”"


def _run_title(data: Any, summary: pd.DataFrame) -> str:
    prompt = getattr(data, "prompt", None)
    if isinstance(prompt, str):
        return _label(_prompt_title(str(getattr(data, "run_id", "")), prompt))
    runs = summary["run_id"].nunique() if "run_id" in summary.columns else 1
    return f"{runs} run{'s' if runs != 1 else ''}, {len(summary)} streams"
