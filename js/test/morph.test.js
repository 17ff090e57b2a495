import { describe, expect, it } from "vitest";
import { appendTextByHtml, morphChildren } from "../src/morph.js";

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

describe("appendTextByHtml", () => {
  it("appends text that grew before the closing tags to the one text node, entities decoded", () => {
    const old = "<p>Hello <em>big wor</em></p>\n";
    const el = box(old);
    const text = el.querySelector("em")?.firstChild;
    const grown = "<p>Hello <em>big world &amp; it&#39;s &lt;ok&gt;</em></p>\n";
    expect(appendTextByHtml(el, old, grown)).toBe(true);
    expect(el.innerHTML).toBe(box(grown).innerHTML);
    expect(el.querySelector("em")?.firstChild).toBe(text);
    expect(el.querySelector("em")?.childNodes.length).toBe(1);
  });

  it("inserts before whitespace that ends the same text node", () => {
    const old = "<ul>\n<li>item\n</li>\n</ul>\n";
    const el = box(old);
    const grown = "<ul>\n<li>item more\n</li>\n</ul>\n";
    expect(appendTextByHtml(el, old, grown)).toBe(true);
    expect(el.innerHTML).toBe(box(grown).innerHTML);
  });

  it("works on the last nodes of a container that holds other nodes before them", () => {
    const el = box("<h1>kept</h1><p>tail</p>");
    expect(appendTextByHtml(el, "<p>tail</p>", "<p>tail grows</p>")).toBe(true);
    expect(el.innerHTML).toBe("<h1>kept</h1><p>tail grows</p>");
  });

  it("refuses anything but plain text before closing tags, and touches nothing then", () => {
    const cases = [
      ["<p>a</p>", "<p>a<em>b</em></p>"], // markup inserted
      ["<p>a</p>", "<p>a &nbsp;</p>"], // an entity the renderer does not make
      ["<p>ab</p>", "<p>ac</p>"], // not an append
      ["<p>ab</p>", "<p>a</p>"], // shorter
      ["<p>a</p><p>b</p>", "<p>a</p>x<p>b</p>"], // inserted text is followed by an opening tag
      ["", "text"], // loose text, outside any element
      ["<p><em></em></p>", "<p><em></em>x</p>"], // after an element, not a text node
    ];
    for (const [old, grown] of cases) {
      const el = box(old);
      expect(appendTextByHtml(el, old, grown), `${old} -> ${grown}`).toBe(false);
      expect(el.innerHTML).toBe(box(old).innerHTML);
    }
  });

  it("refuses when the DOM is not the old HTML", () => {
    const el = box("<p>a</p>");
    expect(appendTextByHtml(el, "<li>a</li>", "<li>ab</li>")).toBe(false);
    expect(el.innerHTML).toBe("<p>a</p>");
  });
});
