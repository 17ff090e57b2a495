"""The finished grid as static outputs that carry the result wherever the notebook goes.

A view: it takes the run's frames. ``static_bundle`` gives ``text/html`` (panes side by side in a
table, header figures, the answers' Markdown rendered, reasoning collapsed, refusals, errors,
search results; inline styles only, no script, nothing fetched), ``text/markdown`` and
``text/plain``. Model output and search snippets are untrusted: Markdown is rendered with raw
HTML shown as text, then every tag and attribute passes an allow-list (the widget's policy:
links only to http, https and mailto, images never loaded but shown as links), and a long answer
is cut with a note (the full text stays in the DataFrames).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from .history import known_number

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_ANSWER_CHARS", "render_markdown", "static_bundle"]

#: An answer longer than this is cut in the static outputs (the DataFrames keep it whole).
MAX_ANSWER_CHARS = 12_000
#: Panes per table row.
PER_ROW = 3
_TAGS = frozenset({"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
                   "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td"})
_VOID = frozenset({"br", "hr"})
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_UNSAFE_LINK = re.compile(r"\]\(\s*(javascript|vbscript|data|file):", re.IGNORECASE)
#: Inline styles of the tags Markdown makes (no stylesheet travels with an output).
_STYLES = {"pre": "white-space:pre-wrap;background:#f6f8fa;padding:4px;margin:4px 0",
           **{f"h{n}": f"font-size:{size}em;margin:6px 0 4px" for n, size in zip(range(1, 7), (1.3, 1.2, 1.1, 1, 1, 1))},
           "table": "border-collapse:collapse", "th": "border:1px solid #d0d7de;padding:2px 4px",
           "td": "border:1px solid #d0d7de;padding:2px 4px", "blockquote": "margin:4px 0;padding-left:8px;"
           "border-left:3px solid #d0d7de;color:#555"}
_STATUS_COLOUR = {"done": "#2e7d32", "failed": "#c62828", "cancelled": "#8d6e63"}
_FONT = "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;font-size:13px"


class _AllowList(HTMLParser):
    """Re-emits only allow-listed tags and attributes; all text is escaped again."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            return
        kept = []
        for name, value in attrs:
            value = value or ""
            if name == "href" and tag == "a" and value.strip().lower().startswith(_SAFE_SCHEMES):
                kept.append(f' href="{html.escape(value.strip(), quote=True)}"')
            elif name == "title" and tag == "a":
                kept.append(f' title="{html.escape(value, quote=True)}"')
            elif name == "start" and tag == "ol" and value.isdigit():
                kept.append(f' start="{value}"')
        if tag == "a":
            kept.append(' rel="noopener noreferrer nofollow" target="_blank"')
        if tag in _STYLES:
            kept.append(f' style="{_STYLES[tag]}"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in _VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _TAGS and tag not in _VOID and tag in self._open:
            while self._open:
                top = self._open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{t}>" for t in reversed(self._open))


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    def image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:  # never loaded: a link
        token = tokens[idx]
        alt = html.escape(token.content or "image", quote=False)
        src = html.escape(str(token.attrGet("src") or ""), quote=True)
        return f'<a href="{src}">[image: {alt}]</a>'

    md.add_render_rule("image", image)
    return md


_md: Any = None


def render_markdown(text: str) -> str:
    """Model Markdown as safe HTML: raw HTML shown as text, then the allow-list."""
    global _md
    if _md is None:
        _md = _markdown()
    clean = _AllowList()
    clean.feed(_md.render(text))
    return clean.result()


def _cut(text: str, limit: int) -> tuple[str, int]:
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)



def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _figures(row: Any) -> list[str]:
    """The header figures of one pane, as the widget shows them."""
    parts = [str(row.get("status") or "")]
    ttft = known_number(row.get("ttft_s"))
    if ttft is not None:
        parts.append(f"TTFT {ttft:.2f} s")
    tokens = known_number(row.get("output_tokens"))
    if tokens is not None:
        parts.append(f"{int(tokens)} tokens")
    rate = known_number(row.get("decode_tokens_per_s"))
    if rate is not None:
        parts.append(f"{rate:.1f} tok/s")
    cost = known_number(row.get("cost_usd"))
    if cost is not None:
        from .cost import format_usd

        parts.append(format_usd(cost, row.get("cost_source")))
    return parts


def _results(chunks: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """Each source's search results (title, url), from its ``search_result`` rows."""
    out: dict[str, list[tuple[str, str]]] = {}
    rows = chunks[chunks["kind"].astype(str) == "search_result"]
    for source, text in zip(rows["source"].astype(str), rows["text"].astype(str)):
        title, _, url = text.rpartition(" <")
        out.setdefault(source, []).append((title or text, url.rstrip(">") if url else ""))
    return out


def _tool_calls(value: object) -> list[str]:
    try:
        calls = json.loads(value) if isinstance(value, str) and value else []
    except ValueError:
        return []
    return [f"{c.get('name', '')}({c.get('arguments', '')})" for c in calls if isinstance(c, dict)]


def _pane_html(row: Any, results: list[tuple[str, str]], limit: int) -> str:
    name = html.escape(str(row.get("source")), quote=False)
    status = str(row.get("status") or "")
    colour = _STATUS_COLOUR.get(status, "#555")
    parts = [f'<div style="font-weight:600;font-size:14px">{name}</div>',
             f'<div style="color:{colour};font-size:12px;margin-bottom:6px">'
             f'{html.escape(" · ".join(_figures(row)), quote=False)}</div>']
    reasoning = _str(row.get("reasoning"))
    if reasoning:
        cut, more = _cut(reasoning, limit)
        parts.append('<details><summary style="color:#666">Reasoning</summary>'
                     f'<div style="white-space:pre-wrap;color:#666">{html.escape(cut, quote=False)}'
                     f'{_more(more)}</div></details>')
    refusal = _str(row.get("refusal"))
    if refusal:
        parts.append('<div style="border-left:3px solid #b26a00;padding:2px 6px;color:#6d4c00">'
                     f'<b>Refused</b> {html.escape(refusal, quote=False)}</div>')
    for call in _tool_calls(row.get("tool_calls")):
        parts.append(f'<pre style="white-space:pre-wrap;background:#f6f8fa;padding:4px">'
                     f'{html.escape(call, quote=False)}</pre>')
    text = _str(row.get("text"))
    if text:
        cut, more = _cut(text, limit)
        parts.append(f"<div>{render_markdown(cut)}{_more(more)}</div>")
    if results:
        items = []
        for i, (title, url) in enumerate(results, 1):
            label = html.escape(title, quote=False)
            safe = url.lower().startswith(("http://", "https://"))
            link = f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer nofollow">{label}</a>' \
                if safe else label
            items.append(f"<li>[{i}] {link}</li>")
        parts.append(f'<ol style="padding-left:18px;font-size:12px">{"".join(items)}</ol>')
    error = _str(row.get("error"))
    if error:
        parts.append('<div style="border-left:3px solid #c62828;padding:2px 6px;color:#c62828">'
                     f'{html.escape(error, quote=False)}</div>')
    return "".join(parts)


def _more(chars: int) -> str:
    if not chars:
        return ""
    return (f'<p style="color:#888;font-style:italic">… {chars:,} more characters not shown here; '
            "the full text is in <code>grid.summary.text</code></p>")


def _rows(items: list[str], per_row: int) -> Iterable[list[str]]:
    for i in range(0, len(items), per_row):
        yield items[i:i + per_row]


def _html(prompt: str, status: str, summary: pd.DataFrame, chunks: pd.DataFrame, limit: int) -> str:
    from .report import cost_line, turn_note

    results = _results(chunks)
    panes = [_pane_html(row, results.get(str(row.get("source")), []), limit)
             for row in summary.to_dict("records")]
    width = f"{100 / min(PER_ROW, max(1, len(panes))):.2f}%"
    cell = (f'<td style="vertical-align:top;border:1px solid #d0d7de;padding:8px;width:{width};'
            f'overflow-wrap:anywhere;word-break:break-word">')
    body = "".join("<tr>" + "".join(f"{cell}{p}</td>" for p in row) + "</tr>" for row in _rows(panes, PER_ROW))
    turn = turn_note(summary)
    head = (f'<div style="margin-bottom:6px"><b>llmgrid</b> · {html.escape(status, quote=False)} · '
            f'{html.escape(turn + " · ", quote=False) if turn else ""}'
            f'{len(panes)} pane{"s" if len(panes) != 1 else ""}'
            f'{" · " + html.escape(cost_line(summary), quote=False) if cost_line(summary) else ""}</div>'
            f'<div style="margin-bottom:6px;color:#444">{html.escape(prompt, quote=False)}</div>')
    return (f'<div class="llmgrid-static" style="{_FONT}">{head}'
            f'<table style="border-collapse:collapse;width:100%;table-layout:fixed">{body}</table></div>')


def _markdown_text(prompt: str, status: str, summary: pd.DataFrame, limit: int) -> str:
    """Markdown with the answers' own Markdown kept and any raw HTML in them shown as text."""
    from .report import turn_note

    turn = turn_note(summary)
    lines = [f"**llmgrid** · {status} · {_md_text(turn) + ' · ' if turn else ''}{len(summary)} panes", "",
             f"> {_md_text(' '.join(prompt.split()))}", ""]
    for row in summary.to_dict("records"):
        lines += [f"### {_md_text(str(row.get('source')))}", "", f"*{_md_text(' · '.join(_figures(row)))}*", ""]
        refusal = _str(row.get("refusal"))
        if refusal:
            lines += [f"**Refused:** {_md_text(refusal)}", ""]
        text = _str(row.get("text"))
        if text:
            cut, more = _cut(text, limit)
            lines += [_md_text(cut), ""]
            if more:
                lines += [f"*… {more:,} more characters not shown here (grid.summary.text)*", ""]
        error = _str(row.get("error"))
        if error:
            lines += [f"**Error:** {_md_text(error)}", ""]
    return "\n".join(lines)


def _md_text(text: str) -> str:
    """Text for the Markdown output: raw HTML shown as text, links to unsafe schemes broken."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _UNSAFE_LINK.sub(r"]\\(\1:", text)


def _plain(prompt: str, status: str, summary: pd.DataFrame, limit: int) -> str:
    from .report import cost_line, turn_note

    turn = turn_note(summary)
    parts = [f"llmgrid · {status} · {turn + ' · ' if turn else ''}{prompt}", ""]
    for row in summary.to_dict("records"):
        head = f"── {row.get('source')} · {' · '.join(_figures(row))} "
        parts.append(head + "─" * max(0, 100 - len(head)))
        for label, key in (("[refusal] ", "refusal"), ("", "text"), ("[error] ", "error")):
            value = _str(row.get(key))
            if value:
                cut, more = _cut(value, limit)
                parts.append(label + cut.rstrip() + (f"\n… {more:,} more characters" if more else ""))
        for call in _tool_calls(row.get("tool_calls")):
            parts.append(f"[tool call] {call}")
        parts.append("")
    total = cost_line(summary)
    return "\n".join([*parts, total] if total else parts)


def static_bundle(summary: pd.DataFrame, chunks: pd.DataFrame, *, prompt: str, status: str,
                  max_answer_chars: int = MAX_ANSWER_CHARS) -> dict[str, str]:
    """``text/html``, ``text/markdown`` and ``text/plain`` renderings of a finished run."""
    return {
        "text/html": _html(prompt, status, summary, chunks, max_answer_chars),
        "text/markdown": _markdown_text(prompt, status, summary, max_answer_chars),
        "text/plain": _plain(prompt, status, summary, max_answer_chars),
    }
