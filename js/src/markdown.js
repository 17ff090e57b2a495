// Incremental Markdown: a growing text is split into settled blocks, rendered once and kept in
// the DOM, and a tail that is re-rendered each frame. Rendering a text in steps gives exactly the
// DOM of rendering it at once (tested for random split points), so streaming never shows a
// different document than the final one.
//
// A block is settled when the next block starts after a blank line and that next block's first
// line is complete: from then on no appended text can extend or re-interpret it (a list item
// marker "2" could still become "2." and continue an ordered list, hence the complete line).
// The lexer keeps an unclosed code fence as one token running to the end of the text (rendered
// as <pre><code> while it streams), so it is always in the tail. A long one would be re-lexed and
// re-sanitised every frame, so a tail that is just an open fence takes a fast path: the <pre><code>
// shell is rendered once and the code grows by appending to its text node.
//
// Raw HTML in model output is shown as text, not interpreted (like markdown-it's html: false);
// images become links, so rendering never makes the browser fetch a URL. Known limitation:
// a reference-style link definition only applies to the blocks rendered with it, so `[x][ref]`
// in a settled block stays literal when `[ref]: url` arrives later.

import { Marked } from "marked";
import { morphChildren, patchTailByHtml } from "./morph.js";
import { sanitizeMarkdownHtml } from "./sanitize.js";

/** @typedef {import("marked").Token} Token */

/** @param {string} s */
function escapeHtml(s) {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const marked = new Marked({ gfm: true, breaks: false, async: false });
marked.use({
  renderer: {
    html(token) {
      const text = escapeHtml(token.text);
      return "block" in token && token.block ? `<p>${text.replace(/\n+$/, "")}</p>\n` : text;
    },
    image({ href, text }) {
      const label = escapeHtml(`[image: ${text || href}]`);
      return `<a href="${escapeHtml(href)}">${label}</a>`;
    },
  },
});

// Grounded answers cite sources as [n]: render them as <sup class="llmgrid-cite">[n]</sup> so a pane
// can link them to its results (a search pane) or to the cited pane (the master view).
marked.use({
  extensions: [
    {
      name: "citation",
      level: "inline",
      start(src) {
        const i = src.search(/\[\d{1,3}\]/);
        return i < 0 ? undefined : i;
      },
      tokenizer(src) {
        const m = /^\[(\d{1,3})\](?![(:])/.exec(src);
        return m ? { type: "citation", raw: m[0], n: Number(m[1]) } : undefined;
      },
      renderer(token) {
        return `<sup class="llmgrid-cite">[${token.n}]</sup>`;
      },
    },
  ],
});

/** @param {string} text */
function normalizeNewlines(text) {
  return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
}

/**
 * Render a whole Markdown text to (unsanitised) HTML.
 * @param {string} text @returns {string}
 */
export function markdownToHtml(text) {
  return /** @type {string} */ (marked.parse(normalizeNewlines(text)));
}

/**
 * Render a whole Markdown text to a sanitised fragment: the reference for the incremental path.
 * @param {string} text @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  return sanitizeMarkdownHtml(markdownToHtml(text));
}

/** @param {string} src */
export function lex(src) {
  return marked.lexer(src);
}

/**
 * How many leading tokens are settled, and how many characters of `src` they cover.
 * @param {Token[]} tokens @param {string} src
 * @returns {{count: number, length: number}}
 */
export function settledPrefix(tokens, src) {
  let offset = 0;
  let best = { count: 0, length: 0 };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (
      i > 0 &&
      t.type !== "space" &&
      tokens[i - 1].type === "space" &&
      /\n[ \t]*\n/.test(tokens[i - 1].raw) &&
      src.indexOf("\n", offset) !== -1
    ) {
      best = { count: i, length: offset };
    }
    offset += t.raw.length;
  }
  return best;
}

/** Any line that could close a fence (CommonMark's rule or marked's looser one). */
const POSSIBLE_CLOSER = /^ {0,3}[`~]{3,}[ \t]*$/m;
const OPENER = /^(`{3,}|~{3,})([^\n]*)\n/;

/**
 * If `tail` is exactly one fenced code block that is still open, its opening line and content.
 * Conservative: anything unusual (indented fence, a line that might close it) returns null and
 * takes the general path.
 * @param {string} tail @returns {{opener: string, content: string} | null}
 */
export function openFence(tail) {
  const m = OPENER.exec(tail);
  if (!m || (m[1][0] === "`" && m[2].includes("`"))) return null;
  const content = tail.slice(m[0].length);
  if (POSSIBLE_CLOSER.test(content)) return null;
  return { opener: m[0], content };
}

/** The text marked gives an open fence's <code> element. @param {string} content */
function fenceCodeText(content) {
  return content === "" || content.endsWith("\n") ? content : content + "\n";
}

/**
 * Settled blocks are wrapped, this many nodes at a time, in a group that the stylesheet gives
 * `content-visibility: auto`: the browser skips the layout and paint of groups out of view, and
 * checks a few dozen groups for visibility each frame instead of every block of a long answer
 * (per block, those checks cost the 8-pane benchmark about as much as its layout). The newest
 * settled blocks stay loose until there are two groups' worth, so the blocks near the tail are
 * never re-parented while in view.
 */
export const GROUP_SIZE = 16;
/** The element a rendered block starts with. */
const BLOCK_TAG = /^<([a-z][a-z0-9]*)[\s>]/;
const GROUP_CLASS = "llmgrid-md-group";

/**
 * The HTML a Markdown container shows, without its layout groups: what a full render gives.
 * @param {Element} container @returns {string}
 */
export function renderedHtml(container) {
  const copy = /** @type {Element} */ (container.cloneNode(true));
  for (const group of copy.querySelectorAll(`:scope > .${GROUP_CLASS}`)) group.replaceWith(...group.childNodes);
  return copy.innerHTML;
}

/** Renders a growing text into `container`, touching only the tail of the DOM per update. */
export class IncrementalMarkdown {
  /** @param {HTMLElement} container @param {{groupSize?: number}} [options] */
  constructor(container, options = {}) {
    this.container = container;
    this.groupSize = options.groupSize ?? GROUP_SIZE;
    /** How many of the container's first children are groups of settled blocks. */
    this.groups = 0;
    /** The text as of the last update. Built by appending, and only read whole by `update`. */
    this.text = "";
    /** The prefix of `text` whose DOM is final. */
    this.settledText = "";
    /** The rest of `text`: what the next render lexes. */
    this.tail = "";
    this.settledNodeCount = 0;
    /** HTML of the tail as last rendered, or null when the tail is an open fence (fast path). */
    /** @type {string | null} */
    this.tailHtml = "";
    /** The open fence shown by the fast path, and the Markdown it shows. */
    /** @type {{opener: string, code: Text, source: string} | null} */
    this.fence = null;
  }

  reset() {
    this.container.replaceChildren();
    this.groups = 0;
    this.text = "";
    this.settledText = "";
    this.tail = "";
    this.settledNodeCount = 0;
    this.tailHtml = "";
    this.fence = null;
  }

  /** @param {{opener: string, content: string}} fence */
  #updateFence(fence) {
    if (this.fence?.opener !== fence.opener) {
      this.#removeTail();
      const shell = sanitizeMarkdownHtml(markdownToHtml(fence.opener));
      const codeEl = shell.querySelector("pre > code");
      if (!codeEl) {
        this.fence = null;
        this.tailHtml = null;
        return false;
      }
      const code = document.createTextNode("");
      codeEl.replaceChildren(code);
      this.container.appendChild(shell);
      this.fence = { opener: fence.opener, code, source: "" };
      this.tailHtml = null;
    }
    this.fence.source = fence.opener + fence.content;
    const code = this.fence.code;
    const shown = code.data;
    const text = fenceCodeText(fence.content);
    if (text.startsWith(shown)) {
      code.appendData(text.slice(shown.length));
    } else if (shown.endsWith("\n") && text.startsWith(shown.slice(0, -1))) {
      // The "\n" marked adds after an incomplete last line: replace it with what follows.
      code.deleteData(shown.length - 1, 1);
      code.appendData(text.slice(shown.length - 1));
    } else {
      code.data = text;
    }
    return true;
  }

  /**
   * Settle blocks without touching the DOM when it shows them already: when their HTML, a block
   * at a time, is the start of the tail's HTML as last rendered, the tail's first nodes are those
   * blocks (each one element and a newline), so only the count of settled nodes moves on. Saves
   * parsing, sanitising and walking a finished block (often a whole list) once more.
   * @param {Token[]} tokens the newly settled blocks @returns {boolean} whether it did
   */
  #settleShown(tokens) {
    const shown = this.tailHtml;
    if (shown === null) return false;
    let offset = 0;
    /** @type {ChildNode | null} */
    let node = this.container.childNodes[this.settledNodeCount] ?? null;
    let count = 0;
    for (const token of tokens) {
      const html = marked.parser([token]);
      if (html === "") continue;
      const tag = BLOCK_TAG.exec(html)?.[1];
      if (!tag || !shown.startsWith(html, offset) || !html.endsWith(tag === "hr" ? ">\n" : `</${tag}>\n`)) return false;
      /** @type {ChildNode | null | undefined} */
      const newline = node?.nextSibling;
      if (!newline || node?.nodeName.toLowerCase() !== tag || newline.nodeType !== 3 || /** @type {Text} */ (newline).data !== "\n") {
        return false;
      }
      node = newline.nextSibling;
      offset += html.length;
      count += 2;
    }
    // What follows must start a node of its own, or the parser would have joined the two.
    if (offset < shown.length && shown[offset] !== "<") return false;
    this.settledNodeCount += count;
    this.tailHtml = shown.slice(offset);
    return true;
  }

  /** Wrap the oldest loose settled nodes in a group once two groups' worth are loose. */
  #group() {
    const c = this.container;
    while (this.settledNodeCount - this.groups >= 2 * this.groupSize) {
      const group = document.createElement("div");
      group.className = GROUP_CLASS;
      const nodes = Array.prototype.slice.call(c.childNodes, this.groups, this.groups + this.groupSize);
      c.insertBefore(group, nodes[0]);
      group.append(...nodes);
      this.groups += 1;
      this.settledNodeCount -= this.groupSize - 1;
    }
  }

  #removeTail() {
    const c = this.container;
    while (c.childNodes.length > this.settledNodeCount) /** @type {ChildNode} */ (c.lastChild).remove();
  }

  /**
   * Bring the DOM up to `text`. Appends are cheap; any other change re-renders from scratch.
   * Reads the whole text (so V8 flattens it): a streaming view prefers `append`.
   * @param {string} text
   */
  update(text) {
    if (text === this.text) return;
    if (!text.startsWith(this.settledText)) this.reset();
    this.text = text;
    this.tail = text.slice(this.settledText.length);
    this.#render();
  }

  /**
   * Take in text appended to the text shown, touching only the tail: the whole text is never
   * read, so a long answer costs no more per frame than a short one.
   * @param {string} added
   */
  append(added) {
    this.text += added;
    this.tail += added;
    this.#render();
  }

  /** Render `this.tail` after the settled blocks, settling whatever became final. */
  #render() {
    const tail = this.tail;
    // Settle only where offsets in the normalised tail equal offsets in the text (no CR in it).
    const hasCR = tail.includes("\r");
    const fence = hasCR ? null : openFence(tail);
    if (fence && this.#updateFence(fence)) return;
    if (this.fence) {
      // The fence closed (or stopped being one): the tail's HTML lets the next step patch the
      // code block as shown instead of re-parsing it.
      this.tailHtml = markdownToHtml(this.fence.source);
      this.fence = null;
    }
    const src = hasCR ? normalizeNewlines(tail) : tail;
    const tokens = marked.lexer(src);
    const settled = hasCR ? { count: 0, length: 0 } : settledPrefix(tokens, src);

    if (settled.count > 0) {
      // The newly settled blocks were the start of the tail shown so far: usually the DOM shows
      // them already; else patch them in place.
      const settledTokens = tokens.slice(0, settled.count);
      if (!this.#settleShown(settledTokens)) {
        const fragment = sanitizeMarkdownHtml(marked.parser(settledTokens));
        const count = fragment.childNodes.length;
        morphChildren(this.container, fragment, this.settledNodeCount, false);
        this.settledNodeCount += count;
        this.tailHtml = null;
      }
      this.#group();
      this.fence = null;
      this.settledText += tail.slice(0, settled.length);
      this.tail = tail.slice(settled.length);
      const rest = openFence(this.tail);
      if (rest && this.#updateFence(rest)) return;
    }
    const tailHtml = marked.parser(settled.count > 0 ? tokens.slice(settled.count) : tokens);
    if (tailHtml !== this.tailHtml) {
      const patched =
        this.tailHtml !== null && patchTailByHtml(this.container, this.tailHtml, tailHtml, sanitizeMarkdownHtml);
      if (!patched) morphChildren(this.container, sanitizeMarkdownHtml(tailHtml), this.settledNodeCount);
      this.tailHtml = tailHtml;
    }
  }
}
