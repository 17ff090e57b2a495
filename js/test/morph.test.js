import { describe, expect, it } from "vitest";
import { isBalancedHtml, morphChildren, patchTailByHtml } from "../src/morph.js";
import { sanitizeMarkdownHtml } from "../src/sanitize.js";

/** @param {string} html */
function frag(html) {
  const t = document.createElement("template");
  t.innerHTML = html;
  return t.content;
}

/** @param {string} html */
function box(html) {
  const el = document.createElement("div");
  el.innerHTML = html;
  return el;
}

describe("morphChildren", () => {
  it("grows a text node in place and keeps every element", () => {
    const el = box("<p>Hello <strong>big</strong> wor</p>");
    const p = el.firstChild;
    const strong = el.querySelector("strong");
    const text = /** @type {Text} */ (p?.lastChild);
    expect(morphChildren(el, frag("<p>Hello <strong>big</strong> world</p>"))).toBe(true);
    expect(el.innerHTML).toBe("<p>Hello <strong>big</strong> world</p>");
    expect(el.firstChild).toBe(p);
    expect(el.querySelector("strong")).toBe(strong);
    expect(p?.lastChild).toBe(text);
  });

  it("reports no change for an equal fragment", () => {
    const el = box("<ul><li>a</li></ul>\n");
    expect(morphChildren(el, frag("<ul><li>a</li></ul>\n"))).toBe(false);
  });

  it("replaces an element whose tag or attributes differ", () => {
    const el = box('<p>x</p><a href="https://a.example">l</a>');
    const p = el.firstChild;
    morphChildren(el, frag('<h2>x</h2><a href="https://b.example">l</a>'));
    expect(el.innerHTML).toBe('<h2>x</h2><a href="https://b.example">l</a>');
    expect(el.firstChild).not.toBe(p);
  });

  it("removes extra children, or keeps them when patching a prefix", () => {
    const el = box("<p>1</p><p>2</p><p>3</p>");
    morphChildren(el, frag("<p>1</p><p>two</p>"), 0, false);
    expect(el.innerHTML).toBe("<p>1</p><p>two</p><p>3</p>");
    morphChildren(el, frag("<p>x</p>"), 1);
    expect(el.innerHTML).toBe("<p>1</p><p>x</p>");
  });

  it("starts at the given child and appends what is missing", () => {
    const el = box("<h1>kept</h1>");
    const h1 = el.firstChild;
    morphChildren(el, frag("<p>a</p><pre><code>b</code></pre>"), 1);
    expect(el.innerHTML).toBe("<h1>kept</h1><p>a</p><pre><code>b</code></pre>");
    expect(el.firstChild).toBe(h1);
  });

  it("replaces text that is not an extension", () => {
    const el = box("<p>abc</p>");
    morphChildren(el, frag("<p>abd</p>"));
    expect(el.innerHTML).toBe("<p>abd</p>");
  });
});

describe("patchTailByHtml", () => {
  /** Patch `old`'s DOM to `grown` and check it equals a fresh parse of `grown`. */
  const patched = (/** @type {string} */ old, /** @type {string} */ grown) => {
    const el = box(old);
    const ok = patchTailByHtml(el, old, grown, sanitizeMarkdownHtml);
    return { el, ok, same: el.innerHTML === box(grown).innerHTML };
  };

  it("appends text that grew before the closing tags to the one text node, entities decoded", () => {
    const old = "<p>Hello <em>big wor</em></p>\n";
    const el = box(old);
    const text = el.querySelector("em")?.firstChild;
    const grown = "<p>Hello <em>big world &amp; it&#39;s &lt;ok&gt;</em></p>\n";
    expect(patchTailByHtml(el, old, grown, sanitizeMarkdownHtml)).toBe(true);
    expect(el.innerHTML).toBe(box(grown).innerHTML);
    expect(el.querySelector("em")?.firstChild).toBe(text);
    expect(el.querySelector("em")?.childNodes.length).toBe(1);
  });

  it("inserts before whitespace that ends the same text node", () => {
    expect(patched("<ul>\n<li>item\n</li>\n</ul>\n", "<ul>\n<li>item more\n</li>\n</ul>\n")).toMatchObject({
      ok: true,
      same: true,
    });
  });

  it("works on the last nodes of a container that holds other nodes before them", () => {
    const el = box("<h1>kept</h1><p>tail</p>");
    expect(patchTailByHtml(el, "<p>tail</p>", "<p>tail grows</p>", sanitizeMarkdownHtml)).toBe(true);
    expect(el.innerHTML).toBe("<h1>kept</h1><p>tail grows</p>");
  });

  it("adds whole elements at the end, parsing only them and keeping the nodes before", () => {
    const cases = [
      // an inline element, with text on both sides joining the text around it
      ["<p>the type</p>\n", "<p>the type <code>text/event-stream</code>, and</p>\n"],
      // a list item
      ["<ul>\n<li>a</li>\n</ul>\n", "<ul>\n<li>a</li>\n<li>b <strong>c</strong></li>\n</ul>\n"],
      // text that turned into an element: the literal backtick text is cut back first
      ["<p>such as `data: [</p>\n", "<p>such as <code>data: [DONE]</code>, which</p>\n"],
      // the whole text of an item turned into an element: no empty text node is left
      ["<ul>\n<li>x</li>\n<li>**</li>\n</ul>\n", "<ul>\n<li>x</li>\n<li><strong>total</strong>: from</li>\n</ul>\n"],
      // an element before whitespace that ends the text node
      ["<ul>\n<li>item\n</li>\n</ul>\n", "<ul>\n<li>item <em>x</em> y\n</li>\n</ul>\n"],
      // the last block grown and new blocks after it, in one frame
      ["<p>nothing else</p>\n", "<p>nothing <em>else</em> will follow.</p>\n<p>A robust</p>\n"],
      ["<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n", "<ul>\n<li>a</li>\n<li>bc</li>\n</ul>\n<h2>Next</h2>\n"],
      ["<ul>\n<li>a</li>\n</ul>\n", "<ul>\n<li>ab</li>\n<li>c</li>\n</ul>\n"],
      ["<ul>\n<li>cut in</li>\n</ul>\n", "<ul>\n<li>cut in half;</li>\n<li>b</li>\n</ul>\n<p>c</p>\n"],
      // new blocks after the old ones
      ["<p>the type</p>\n", "<p>the type</p>\n<ul>\n<li>b</li>\n</ul>\n<hr>\n"],
      // text cut back and replaced by other text (an entity completed, a trailing space gone)
      ["<p>a &amp; b c</p>\n", "<p>a &amp; b d&lt;</p>\n"],
    ];
    for (const [old, grown] of cases) {
      const el = box(old);
      const first = el.querySelector("p, li")?.firstChild;
      expect(patchTailByHtml(el, old, grown, sanitizeMarkdownHtml), `${old} -> ${grown}`).toBe(true);
      expect(el.innerHTML, `${old} -> ${grown}`).toBe(box(grown).innerHTML);
      expect(first && el.contains(first), `${old} -> ${grown}: the first node was kept`).toBe(true);
    }
  });

  it("sanitises the elements it adds", () => {
    const old = "<p>a</p>\n";
    const el = box(old);
    expect(patchTailByHtml(el, old, '<p>a<img src="x" onerror="alert(1)"></p>\n', sanitizeMarkdownHtml)).toBe(true);
    expect(el.innerHTML).not.toContain("onerror");
  });

  it("refuses other changes, and touches nothing then", () => {
    const cases = [
      ["<p>a</p>", "<p>a &nbsp;</p>"], // an entity the renderer does not make
      ["<p>a</p><p>b</p>", "<p>a</p>x<p>b</p>"], // a change before an element that follows
      ["", "text"], // loose text, outside any element
      ["<p>a</p>", "<p>a</p>\n<p>b</p>\n"], // new blocks, but no whitespace node to follow
      ["<p>a</p>\n", "<p>a</p>\nb<p>c</p>\n"], // loose text after the old blocks
      ["<p><em></em></p>", "<p><em></em>x</p>"], // after an element, not a text node
      ["<p>a <em>b</em></p>", "<p>a <em>b</p>"], // unbalanced
      ["<p>`x</p>", "<p>`x<code>y</p>"], // an unclosed element
    ];
    for (const [old, grown] of cases) {
      const el = box(old);
      expect(patchTailByHtml(el, old, grown, sanitizeMarkdownHtml), `${old} -> ${grown}`).toBe(false);
      expect(el.innerHTML).toBe(box(old).innerHTML);
    }
  });

  it("refuses when the DOM is not the old HTML", () => {
    const el = box("<p>a</p>");
    expect(patchTailByHtml(el, "<li>a</li>", "<li>ab</li>", sanitizeMarkdownHtml)).toBe(false);
    expect(patchTailByHtml(el, "<p>b</p>", "<p>b<em>c</em></p>", sanitizeMarkdownHtml)).toBe(false);
    expect(el.innerHTML).toBe("<p>a</p>");
  });
});

describe("isBalancedHtml", () => {
  it("accepts text and whole elements only", () => {
    expect(isBalancedHtml("plain &amp; text")).toBe(true);
    expect(isBalancedHtml(' a <code>x</code>, <a href="https://e.test/?a=1&amp;b">l</a><br>')).toBe(true);
    expect(isBalancedHtml("<li>a</li>\n<li>b <em>c</em></li>\n")).toBe(true);
    expect(isBalancedHtml("</li>\n<li>b")).toBe(false);
    expect(isBalancedHtml("<em>a")).toBe(false);
    expect(isBalancedHtml("<em>a</strong>")).toBe(false);
    expect(isBalancedHtml("a < b")).toBe(false);
    expect(isBalancedHtml('<a title="x>y">z</a>')).toBe(false);
  });
});
