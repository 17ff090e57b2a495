"""Save a run: its DataFrames as CSV or Parquet files, and a self-contained HTML report.

A view: it reads a RunRecord (``grid.record()``) or a History; a Grid is read as its record.

The report is one file with no external resources (inline CSS, charts as base64 PNG, a
Content-Security-Policy that allows nothing else) and every piece of model output, prompt,
source name and error escaped: model output is untrusted text and is never injected as HTML.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import HOSTED_OPENAI_COMPATIBLE, Secret, env_key
from .history import History, as_plain, run_record
from .metrics import SUMMARY_DTYPES, typed_summary
from .plots import _prompt_title, plot_run

if TYPE_CHECKING:
    import pandas as pd

    from .history import Recordable, RunRecord

    #: What the exports take: one run (a RunRecord, or a Grid giving its record) or a History.
    Runs = RunRecord | History | Recordable

__all__ = ["ExportedFiles", "html_report", "read_exported", "to_csv", "to_parquet"]

#: Columns holding text (pandas "string" dtype); the rest are numbers (summary: SUMMARY_DTYPES).
_STRING_COLUMNS = frozenset({"prompt", "kind", "text"} | {c for c, d in SUMMARY_DTYPES.items() if d == "string"})
#: Environment variables whose values are masked in a report, should one ever reach its text.
_KEY_VARIABLES = tuple(sorted(
    {name for p in HOSTED_OPENAI_COMPATIBLE.values() for name in p.key_env}
    | {"ANTHROPIC_API_KEY", "GEMINI_API_KEY", "BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY", "LITELLM_API_KEY",
       "AZURE_API_KEY", "COHERE_API_KEY", "XAI_API_KEY", "HF_TOKEN"}
))


class ExportedFiles(NamedTuple):
    """The two files written for a run (or a history): unpack as ``chunks, summary = ...``."""

    chunks: Path
    summary: Path


def _frames(data: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not (hasattr(data, "chunks") and hasattr(data, "summary")):
        raise TypeError("expected a RunRecord, a History or a Grid (something with .chunks and .summary)")
    return data.chunks, data.summary


def _paths(data: Any, directory: str | Path, prefix: str | None, suffix: str) -> ExportedFiles:
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    if prefix is None:
        run_id = getattr(data, "run_id", None)
        prefix = f"llmgrid-{run_id}" if isinstance(run_id, str) else "llmgrid-history"
    return ExportedFiles(folder / f"{prefix}-chunks{suffix}", folder / f"{prefix}-summary{suffix}")


def to_csv(grid: Runs, directory: str | Path, *, prefix: str | None = None) -> ExportedFiles:
    """Write ``grid.chunks`` and ``grid.summary`` (a Grid's, a RunRecord's or a History's) as UTF-8
    CSV files in ``directory``.

    Files are ``<prefix>-chunks.csv`` and ``<prefix>-summary.csv`` (prefix: ``llmgrid-<run_id>``,
    or ``llmgrid-history`` for a History). ``read_exported`` reads them back with their dtypes.
    """
    data = as_plain(grid)
    chunks, summary = _frames(data)
    files = _paths(data, directory, prefix, ".csv")
    chunks.to_csv(files.chunks, index=False, encoding="utf-8")
    summary.to_csv(files.summary, index=False, encoding="utf-8")
    return files


def to_parquet(grid: Runs, directory: str | Path, *, prefix: str | None = None) -> ExportedFiles:
    """Write ``grid.chunks`` and ``grid.summary`` as Parquet files (needs pyarrow) in ``directory``."""
    data = as_plain(grid)
    chunks, summary = _frames(data)
    files = _paths(data, directory, prefix, ".parquet")
    chunks.to_parquet(files.chunks, index=False)
    summary.to_parquet(files.summary, index=False)
    return files


def read_exported(files: ExportedFiles | tuple[str | Path, str | Path]) -> History:
    """Read files written by ``to_csv`` or ``to_parquet`` back into DataFrames with their dtypes.

    CSV cannot tell an empty string from a missing value: an empty text field reads back as ""
    in ``chunks.text`` and in the summary's answer columns, and as missing elsewhere, which is
    how the run recorded them.
    """
    chunks_path, summary_path = (Path(p) for p in files)
    return History(_read(chunks_path, text_is_never_missing=True), typed_summary(_read(summary_path)))


def _read(path: Path, *, text_is_never_missing: bool = False) -> pd.DataFrame:
    import pandas as pd

    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        header = pd.read_csv(path, nrows=0).columns
        # pandas 3 parses floats exactly by default (and deprecates the option); 2.x needs asking.
        exact: dict[str, Any] = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
        # Only empty fields are missing: a token that reads "NA" or "null" stays text.
        df = pd.read_csv(path, dtype={c: "string" for c in header if c in _STRING_COLUMNS},
                         keep_default_na=False, na_values=[""], encoding="utf-8", **exact)
        if text_is_never_missing and "text" in df.columns:
            df["text"] = df["text"].fillna("")
    for col in df.columns:
        if col in _STRING_COLUMNS:
            df[col] = df[col].astype("string")
    return df


# -- the HTML report -----------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5b6475; --line: #d7dbe3; --bg: #ffffff;
        --panel: #f6f7f9; --bad: #b3261e; --bad-bg: #fdecea; --ok: #1b7f3b; --warn: #8a5a00; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8ee; --muted: #a3aab8; --line: #3a4150; --bg: #161a22; --panel: #1f2430;
          --bad: #ff8a80; --bad-bg: #3a1f1f; --ok: #7bd88f; --warn: #f0c36d; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 24px; font: 14px/1.5 system-ui, -apple-system,
       "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 0; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.meta { color: var(--muted); margin: 0 0 16px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 8px 0 0; padding: 10px 12px;
      background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
      font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
td { white-space: nowrap; }
th:first-child, td:first-child, td.text { text-align: left; white-space: normal; }
th { font-weight: 600; color: var(--muted); }
.scroll { overflow-x: auto; }
img.chart { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
section.source { margin: 14px 0; padding: 12px 14px; border: 1px solid var(--line); border-radius: 8px; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; border: 1px solid currentColor; }
.status-done { color: var(--ok); } .status-failed { color: var(--bad); }
.status-cancelled, .status-other { color: var(--warn); }
.figures { color: var(--muted); font-size: 13px; }
.error { margin-top: 8px; padding: 8px 12px; color: var(--bad); background: var(--bad-bg);
         border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: var(--muted); margin-top: 8px; }
pre.refusal { color: var(--muted); border-left: 3px solid var(--warn); }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"""

# What the page may load: nothing but its own inline styles and data: images. Even if some
# text slipped through unescaped, no script or remote resource could run or load.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_TABLE_COLUMNS = (
    ("status", "status", None),
    ("ttft_s", "TTFT", "s"),
    ("e2e_s", "e2e", "s"),
    ("output_tokens", "tokens", None),
    ("decode_tokens_per_s", "decode tok/s", "rate"),
    ("e2e_tokens_per_s", "e2e tok/s", "rate"),
    ("icl_p50_s", "ICL p50", "ms"),
    ("icl_p99_s", "ICL p99", "ms"),
    ("stalls", "stalls", None),
    ("attempts", "attempts", None),
    ("warnings", "warnings", None),
    ("cost_usd", "cost", "usd"),
)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _cell(value: object, unit: str | None, cost_source: object = None) -> str:
    if _missing(value):
        return "–"
    if unit == "usd":
        from .cost import format_usd

        return format_usd(float(value), cost_source if isinstance(cost_source, str) else None) or "–"  # type: ignore[arg-type]
    if unit == "s":
        v = float(value)  # type: ignore[arg-type]
        return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"
    if unit == "ms":
        return f"{float(value) * 1000:.1f} ms"  # type: ignore[arg-type]
    if unit == "rate":
        return f"{float(value):,.1f}"  # type: ignore[arg-type]
    return str(value)


def _status_class(status: object) -> str:
    return f"status-{status}" if status in ("done", "failed", "cancelled") else "status-other"


def _one_run(data: Any, run_id: str | None) -> RunRecord:
    """The one run the report is about: the record itself, or ``run_id``'s of a History."""
    if isinstance(getattr(data, "run_id", None), str):  # one run
        return run_record(data)
    chunks, summary = _frames(data)
    return (data if isinstance(data, History) else History(chunks, summary)).run(run_id)


def _chart_png(run: RunRecord, title: str) -> str | None:
    """The run's dashboard as a base64 PNG, drawn without pyplot; None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = plot_run(run, fig=Figure(), title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def html_report(grid: Runs, path: str | Path | None = None, *, run_id: str | None = None) -> str:
    """A self-contained HTML page of one run: prompt, summary table, charts, every answer, errors.

    ``grid`` is one run (a RunRecord, or a Grid), or a History (``lg.history()``, or one read from
    a log) with ``run_id`` choosing the run (default: the last). With ``path`` the page is also
    written there (UTF-8). Model output, prompt and errors are escaped text; the values of API-key
    variables set in this process are masked wherever they might appear.
    """
    from .report import turn_note

    version = _package_version()
    run = _one_run(as_plain(grid), run_id)
    rid, prompt, started, chunks, summary = run.run_id, run.prompt, run.started_at, run.chunks, run.summary
    when = (_dt.datetime.fromtimestamp(started, tz=_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
            if started is not None and math.isfinite(started) else "unknown time")
    # Masked before drawing: text in pixels cannot be masked afterwards.
    png = _chart_png(run, _mask_keys(_prompt_title(rid, prompt)))

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="llmgrid_nb {_e(version)}">',
        f"<title>llmgrid run {_e(rid)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>llmgrid run <code>{_e(rid)}</code></h1>",
        f'<p class="meta">{_e(when)} · {_e(turn_note(summary)) + " · " if turn_note(summary) else ""}'
        f'{len(summary)} source{"s" if len(summary) != 1 else ""} · '
        f"{_e(_status_line(summary))}</p>",
        "<h2>Prompt</h2>",
        f'<pre class="prompt">{_e(prompt)}</pre>',
        "<h2>Summary</h2>",
        _summary_table(summary),
    ]
    from .report import cost_line

    total = cost_line(summary)
    if total:
        parts.append(f'<p class="meta cost-total">{_e(total[0].upper() + total[1:])}</p>')
    parts.append("<h2>Charts</h2>")
    if png is not None:
        parts.append(f'<img class="chart" alt="cumulative tokens, TTFT, inter-chunk latency and decode '
                     f'speed per source" src="data:image/png;base64,{png}">')
    else:
        parts.append('<p class="meta">Install matplotlib (<code>pip install llmgrid_nb[plot]</code>) '
                     "for charts.</p>")
    parts.append("<h2>Answers</h2>")
    for _, row in summary.iterrows():
        parts.append(_source_section(row, chunks))
    parts.append(f"<footer>Generated by llmgrid_nb {_e(version)}. Times are seconds on the kernel's "
                 "monotonic clock; see the README's metric definitions.</footer>")
    parts.append("</body></html>")
    page = _mask_keys("\n".join(parts))
    if path is not None:
        Path(path).expanduser().write_text(page, encoding="utf-8")
    return page


def _package_version() -> str:
    """The installed package's version (read from its metadata: this module does not import the
    package it is part of)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmgrid_nb")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _status_line(summary: pd.DataFrame) -> str:
    counts = summary["status"].astype(str).value_counts()
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _summary_table(summary: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(title)}</th>" for _, title, _ in _TABLE_COLUMNS)
    rows = []
    for _, row in summary.iterrows():
        cells = [f'<td class="text">{_e(row["source"])}</td>']
        for col, _, unit in _TABLE_COLUMNS:
            value = row[col] if col in row.index else None
            cls = f' class="{_status_class(value)}"' if col == "status" else ""
            cells.append(f"<td{cls}>{_e(_cell(value, unit, row.get('cost_source')))}</td>")
        err = row["error"] if "error" in row.index and not _missing(row["error"]) else ""
        cells.append(f'<td class="text">{_e(err)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr><th>source</th>{head}<th>error</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _source_section(row: Any, chunks: pd.DataFrame) -> str:
    source = str(row["source"])
    status = str(row["status"]) if not _missing(row["status"]) else "unknown"
    mine = chunks[chunks["source"].astype(str) == source]
    kinds = mine["kind"].astype(str)
    texts = mine["text"].astype(str)
    answer = "".join(texts[kinds.isin(("token", "final_synthesis"))])
    reasoning = "".join(texts[kinds == "reasoning"])
    refusal = "".join(texts[kinds == "refusal"])
    tools = list(texts[kinds == "tool_call"])
    warnings = [t for t, k, last in zip(texts, kinds, _is_last(len(mine))) if k == "error"
                and not (last and status == "failed")]
    figures = (f"{_cell(row.get('ttft_s'), 's')} to first token · {_cell(row.get('output_tokens'), None)} tokens · "
               f"{_cell(row.get('decode_tokens_per_s'), 'rate')} tok/s decode · {_cell(row.get('model'), None)} "
               f"via {_cell(row.get('route'), None)}{_cost_figure(row)}")
    out = [f'<section class="source"><h3>{_e(source)} <span class="badge {_status_class(status)}">'
           f"{_e(status)}</span></h3>", f'<div class="figures">{_e(figures)}</div>']
    if not _missing(row.get("error")):
        out.append(f'<div class="error">{_e(row["error"])}</div>')
    for w in warnings:
        out.append(f'<div class="figures">warning: {_e(w)}</div>')
    if reasoning:
        out.append(f"<details><summary>reasoning ({len(reasoning):,} characters)</summary>"
                   f"<pre>{_e(reasoning)}</pre></details>")
    for call in tools:
        out.append(f'<pre class="tool">tool call: {_e(call)}</pre>')
    if refusal:
        out.append(f'<details open><summary>refused ({len(refusal):,} characters)</summary>'
                   f'<pre class="refusal">{_e(refusal)}</pre></details>')
    label = "answer" if status == "done" else "partial answer"
    if answer:
        out.append(f'<details open><summary>{label} ({len(answer):,} characters)</summary>'
                   f'<pre class="answer">{_e(answer)}</pre></details>')
    elif not tools and not refusal:
        out.append('<div class="figures">no answer text</div>')
    out.append("</section>")
    return "".join(out)


def _cost_figure(row: Any) -> str:
    """`` · $0.0012 (price-table: litellm 1.106.2 price map)`` for a pane whose cost is known."""
    cost, source = row.get("cost_usd"), row.get("cost_source")
    if _missing(cost):
        return ""
    where = row.get("price_source")
    detail = f"{source}: {where}" if not _missing(where) and where != source else str(source)
    return f" · {_cell(cost, 'usd', source)} ({detail})"


def _is_last(n: int) -> list[bool]:
    return [i == n - 1 for i in range(n)]


def _mask_keys(page: str) -> str:
    for name in _KEY_VARIABLES:
        secret: Secret | None = env_key([name])
        if secret is not None:
            page = secret.redact(page)
    return page
