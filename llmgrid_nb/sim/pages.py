"""Realistic HTML article pages (with boilerplate around the article) for content extraction tests."""

from __future__ import annotations

import re
from html import escape

from .brave import page_title
from .corpus import TOPICS, Topic

__all__ = ["error_page", "nginx_error_page", "render_page"]

_BIG_BYTES = 200 * 1024


def _inline(text: str) -> str:
    html = escape(text)
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html)


def _block_html(block: str) -> str:
    if block.startswith("```"):
        lines = block.split("\n")
        lang = lines[0][3:].strip()
        code = "\n".join(lines[1:-1])
        cls = f' class="language-{escape(lang)}"' if lang else ""
        return f"<pre><code{cls}>{escape(code)}</code></pre>"
    if block.startswith("## "):
        head, _, rest = block.partition("\n")
        return f"<h2>{escape(head[3:])}</h2>\n" + (_block_html(rest.strip()) if rest.strip() else "")
    lines = block.split("\n")
    if any(line.startswith("- ") for line in lines):
        intro = [line for line in lines if not line.startswith("- ")]
        items = [line[2:] for line in lines if line.startswith("- ")]
        html = f"<p>{_inline(' '.join(intro))}</p>\n" if intro else ""
        return html + "<ul>\n" + "\n".join(f"  <li>{_inline(i)}</li>" for i in items) + "\n</ul>"
    return f"<p>{_inline(' '.join(block.split()))}</p>"


def _article(topic: Topic, number: int, big: bool) -> str:
    blocks = topic.blocks[number % len(topic.blocks) :] + topic.blocks[: number % len(topic.blocks)]
    parts = [_block_html(b) for b in blocks]
    if big:
        others = [t for t in TOPICS if t is not topic]
        i = 0
        while sum(len(p) for p in parts) < _BIG_BYTES:
            other = others[i % len(others)]
            parts.append(f"<h2>{escape(other.title)}</h2>")
            parts.extend(_block_html(b) for b in other.blocks)
            i += 1
    return "\n".join(parts)


def render_page(slug: str, *, big: bool = False) -> bytes:
    """The HTML page for ``slug``: nav, header, cookie banner, article, related links, footer."""
    topic, number, title, site = page_title(slug)
    related = "\n".join(
        f'      <li><a href="/pages/{t.key}-{number + 1}-related">{escape(t.title)}</a></li>'
        for t in TOPICS[:5]
        if t is not topic
    )
    body = _article(topic, number, big)
    html = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)} | {escape(site)}</title>
  <meta name="description" content="{escape(topic.title)}">
  <link rel="stylesheet" href="/static/site.css">
  <script>window.dataLayer = window.dataLayer || []; function gtag(){{dataLayer.push(arguments);}}</script>
</head>
<body>
  <header class="site-header">
    <a class="logo" href="/">{escape(site)}</a>
    <nav class="main-nav">
      <ul>
        <li><a href="/">Home</a></li>
        <li><a href="/topics">Topics</a></li>
        <li><a href="/newsletter">Newsletter</a></li>
        <li><a href="/about">About</a></li>
      </ul>
    </nav>
  </header>
  <div class="cookie-banner" role="dialog">We use cookies to improve your experience.
    <button type="button">Accept all</button> <button type="button">Manage preferences</button></div>
  <main>
    <article>
      <h1>{escape(title)}</h1>
      <p class="byline">By Alex Morgan · {6 + number % 9} min read</p>
{body}
    </article>
    <aside class="related">
      <h3>Related articles</h3>
      <ul>
{related}
      </ul>
      <div class="ad">Advertisement</div>
    </aside>
  </main>
  <footer class="site-footer">
    <p>Subscribe to our newsletter for weekly articles.</p>
    <nav><a href="/privacy">Privacy</a> · <a href="/terms">Terms</a> · <a href="/contact">Contact</a></nav>
    <p>© 2024 {escape(site)}. All rights reserved.</p>
  </footer>
</body>
</html>
"""
    return html.encode()


def error_page() -> bytes:
    """A generic 500 page."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n"
        b"<body><h1>Internal Server Error</h1><p>Something went wrong on our side.</p></body></html>\n"
    )


def nginx_error_page(status: int = 502, reason: str = "Bad Gateway") -> bytes:
    """nginx's stock error page, as a misconfigured proxy returns it with status 200 or 5xx."""
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
