import { describe, expect, it } from "vitest";
import { morphChildren } from "../src/morph.js";

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
