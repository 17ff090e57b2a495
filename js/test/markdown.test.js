import { describe, expect, it } from "vitest";
import { IncrementalMarkdown, renderMarkdown, renderedHtml, settledPrefix, lex } from "../src/markdown.js";
import { fragmentToHtml } from "../src/sanitize.js";

/** A small deterministic PRNG so failures reproduce. @param {number} seed */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** @param {string} text */
const full = (text) => fragmentToHtml(renderMarkdown(text));

const DOCS = {
  mixed: [
    "# Title",
    "",
    "Some *intro* text with `code` and a [link](https://example.com).",
    "Second line of the same paragraph.",
    "",
    "## Steps",
    "",
    "1. first",
    "2. second",
    "",
    "3. third after a blank (loose list)",
    "",
    "- bullet a",
    "- bullet b",
    "  continued",
    "",
    "  - nested",
    "",
    "```python",
    "def f(x):",
    "",
    "    return x * 2",
    "```",
    "",
    "> a quote",
    "> spanning lines",
    "",
    "| a | b |",
    "|---|---|",
    "| 1 | 2 |",
    "",
    "Setext heading",
    "==============",
    "",
    "~~~",
    "tilde fence with ``` inside",
    "~~~",
    "",
    "    indented code",
    "",
    "    more indented",
    "",
    "- [ ] task",
    "- [x] done",
    "",
    "Final paragraph with <b>raw html</b> and ![img](https://x.test/a.png).",
    "",
  ].join("\n"),
  fences: "Intro\n\n```js\nconst a = 1;\n\n\nconst b = 2;\n```\n\nafter\n\n````\n```\nnested\n```\n````\n\nend\n\n```\nunclosed\n\nstill code",
  lists: "1. a\n\n2. b\n\n10. c\n\n- x\n\n* y\n\n+ z\n\n1) p\n\n2) q\n\npara\n- interrupt\n\n-\n\ntext",
  openFences: "Intro\n\n```js\nline1\n\n\n\tindented\n``\n ~~ \n  ```js not a closer\nmore <b>\n   ```\n\nafter\n\n~~~\n```\nstill\n````\n~~~~\n\nend\n\n``` py x\nfoo\n\n\n   ~~~\n```~\n\n````\nlong ``` fence\n```\n",
  // What language models write: code spans, emphasis and links that close a few tokens later.
  inline: [
    "The response has the content type `text/event-stream`, and every message is `data: ...`.",
    "A **bold claim** with _emphasis_, a [link](https://example.com/a?b=1&c=2) and <https://x.test>.",
    "",
    "- `200 OK` when everything worked;",
    "- **inter-token latency**: the gaps between tokens &amp; stalls;",
    "- `429` and `503` < `500`",
    "",
    "Ends with `data: [DONE]`, a literal `` ` `` and 3 * 4 = 12 & more ***mixed* emphasis**.",
  ].join("\n"),
  headings: "# h1\n## h2\ntext\n### h3 ###\n\nline\n---\n\n***\n\n#nospace\n\n  # indented heading\n",
};

/** A seeded PRNG and an empty renderer, for one random-split run. @param {number} seed */
function fresh(seed) {
  const container = document.createElement("div");
  // Small groups (2-5 nodes) so that grouping settled blocks is exercised at every step.
  return { rand: rng(seed), container, md: new IncrementalMarkdown(container, { groupSize: 2 + (seed % 4) }) };
}

describe("incremental markdown", () => {
  for (const [name, doc] of Object.entries(DOCS)) {
    it(`equals a full render at every step for random splits (${name})`, () => {
      for (let seed = 1; seed <= 12; seed++) {
        const { rand, container, md } = fresh(seed);
        let pos = 0;
        while (pos < doc.length) {
          pos = Math.min(doc.length, pos + 1 + Math.floor(rand() * 12));
          const prefix = doc.slice(0, pos);
          md.update(prefix);
          expect(renderedHtml(container), `seed ${seed} at ${pos}: ${JSON.stringify(prefix.slice(-20))}`).toBe(full(prefix));
        }
      }
    });

    it(`appending the new text equals a full render at every step, mixed with whole updates (${name})`, () => {
      for (let seed = 1; seed <= 12; seed++) {
        const { rand, container, md } = fresh(seed);
        let pos = 0;
        while (pos < doc.length) {
          // One to three appends per frame, as a frame can take in several deltas.
          const appends = [];
          for (let k = 1 + Math.floor(rand() * 3); k > 0 && pos < doc.length; k--) {
            const next = Math.min(doc.length, pos + 1 + Math.floor(rand() * 12));
            appends.push({ at: pos, extra: doc.slice(pos, next) });
            pos = next;
          }
          const prefix = doc.slice(0, pos);
          if (rand() < 0.1) md.update(prefix);
          else md.append(appends.map((x) => x.extra).join(""));
          expect(renderedHtml(container), `seed ${seed} at ${pos}: ${JSON.stringify(prefix.slice(-20))}`).toBe(full(prefix));
        }
        expect(md.text).toBe(doc);
      }
    });
  }

  it("equals a full render char by char", () => {
    const doc = DOCS.mixed + DOCS.lists + "\n\n" + DOCS.fences;
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container, { groupSize: 3 });
    for (let pos = 1; pos <= doc.length; pos++) {
      md.update(doc.slice(0, pos));
      expect(renderedHtml(container), `at ${pos}`).toBe(full(doc.slice(0, pos)));
    }
  });

  it("parses only what it adds when inline elements and list items arrive, and nothing to settle a block", () => {
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container);
    md.append("Intro with a long paragraph of text that is not parsed again. ");
    const intro = container.querySelector("p")?.firstChild;
    /** @type {string[]} */
    const parsed = [];
    const setter = /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(Element.prototype, "innerHTML"));
    Object.defineProperty(Element.prototype, "innerHTML", {
      ...setter,
      set(/** @type {string} */ v) {
        parsed.push(v);
        setter.set?.call(this, v);
      },
    });
    try {
      // an inline element, a code span completed, a list item, a list settled by the next block
      for (const part of ["It has `text/event", "-stream` in it", "\n\n- one **bold** item", "\n- two", "\n\nAfter"]) {
        md.append(part);
      }
    } finally {
      Object.defineProperty(Element.prototype, "innerHTML", setter);
    }
    expect(renderedHtml(container)).toBe(full(md.text));
    expect(container.querySelector("p")?.firstChild).toBe(intro);
    // What was parsed: the code span, the new list (once, when it appeared), the second item,
    // the paragraph after it. Never the intro paragraph again, never the settled list.
    expect(parsed.some((html) => html.includes("Intro"))).toBe(false);
    expect(parsed.filter((html) => html.includes("one")).length).toBe(1);
    expect(parsed.length).toBeLessThanOrEqual(4);
  });

  it("grows a streaming paragraph without parsing any HTML", () => {
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container);
    md.append("# Title\n\nA paragraph with *emphasis* that ");
    const text = container.querySelector("p")?.lastChild;
    const setter = /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(Element.prototype, "innerHTML"));
    let parses = 0;
    Object.defineProperty(Element.prototype, "innerHTML", {
      ...setter,
      set(/** @type {string} */ v) {
        parses += 1;
        setter.set?.call(this, v);
      },
    });
    try {
      for (const word of ["keeps ", "growing, ", "it's ", "1 < 2 ", "& done"]) md.append(word);
    } finally {
      Object.defineProperty(Element.prototype, "innerHTML", setter);
    }
    expect(parses).toBe(0);
    expect(container.querySelector("p")?.lastChild).toBe(text);
    expect(renderedHtml(container)).toBe(full(md.text));
  });

  it("wraps settled blocks in groups, keeping the newest loose and every node it already had", () => {
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container, { groupSize: 4 });
    const paragraphs = Array.from({ length: 12 }, (_, i) => `Paragraph ${i}.`);
    md.append(paragraphs.slice(0, 2).join("\n\n") + "\n\n");
    const first = container.querySelector("p");
    for (const p of paragraphs.slice(2)) md.append(p + "\n\n");
    const groups = container.querySelectorAll(":scope > .llmgrid-md-group");
    expect(groups.length).toBeGreaterThan(0);
    expect(groups[0].firstChild).toBe(first); // moved into the group, not rebuilt
    const loose = container.childNodes.length - groups.length;
    expect(loose).toBeLessThan(2 * 4 + 2); // fewer than two groups' worth, plus the tail
    expect(renderedHtml(container)).toBe(full(md.text));
    md.update("Replaced.");
    expect(container.querySelector(".llmgrid-md-group")).toBeNull();
    expect(renderedHtml(container)).toBe(full("Replaced."));
  });

  it("keeps settled block nodes instead of rebuilding them", () => {
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container);
    md.update("# Title\n\nfirst paragraph\n\nsecond");
    const heading = container.querySelector("h1");
    md.update("# Title\n\nfirst paragraph\n\nsecond paragraph grows\n\nthird");
    expect(container.querySelector("h1")).toBe(heading);
    expect(md.settledText.length).toBeGreaterThan(0);
  });

  it("renders an unclosed code fence as pre/code while it streams", () => {
    const container = document.createElement("div");
    new IncrementalMarkdown(container).update("text\n\n```js\nlet x = '<b>';\n");
    const code = container.querySelector("pre > code.language-js");
    expect(code?.textContent).toBe("let x = '<b>';\n");
    expect(container.querySelector("b")).toBeNull();
  });

  it("grows an open fence by appending to one text node", () => {
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container);
    md.update("para\n\n```js\nconst a");
    const code = container.querySelector("code");
    const node = code?.firstChild;
    md.update("para\n\n```js\nconst a = 1;\nconst b");
    expect(container.querySelector("code")).toBe(code);
    expect(code?.firstChild).toBe(node);
    expect(code?.textContent).toBe("const a = 1;\nconst b\n");
    expect(renderedHtml(container)).toBe(full("para\n\n```js\nconst a = 1;\nconst b"));
  });

  it("re-renders from scratch when the text is replaced, not appended", () => {
    const container = document.createElement("div");
    const md = new IncrementalMarkdown(container);
    md.update("# One\n\nalpha\n\nbeta\n");
    md.update("# Two\n\ngamma\n");
    expect(renderedHtml(container)).toBe(full("# Two\n\ngamma\n"));
  });

  it("does not settle a block whose follower's first line is incomplete", () => {
    // "2" could still become "2." and join the ordered list above.
    const src = "1. a\n\n2";
    expect(settledPrefix(lex(src), src).count).toBe(0);
    const src2 = "para\n\nnext\n";
    expect(settledPrefix(lex(src2), src2).length).toBe("para\n\n".length);
  });

  it("shows raw HTML as text and images as links", () => {
    const html = full("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)> ![a](https://e.test/i.png)");
    expect(html).not.toContain("<script");
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;script&gt;");
    expect(html).toContain('href="https://e.test/i.png"');
  });
});

describe("citations", () => {
  it("renders [n] as a citation and leaves links and references alone", async () => {
    const { markdownToHtml } = await import("../src/markdown.js");
    const html = markdownToHtml("SSE reconnects [1][2]. See [docs](https://x.example) and [3]: not a ref.");
    expect(html).toContain('<sup class="llmgrid-cite">[1]</sup><sup class="llmgrid-cite">[2]</sup>');
    expect(html).toContain('<a href="https://x.example">docs</a>');
  });
});

describe("citations after sanitising", () => {
  it("keep their marker class, and raw HTML that imitates one stays text", () => {
    const frag = renderMarkdown('Proxies buffer [1]. <sup class="llmgrid-cite evil">[9]</sup>');
    const sups = [...frag.querySelectorAll("sup")];
    // The raw tags stay text; the "[9]" between them is a citation like any other "[n]".
    expect(sups.map((s) => [s.className, s.textContent])).toEqual([["llmgrid-cite", "[1]"], ["llmgrid-cite", "[9]"]]);
    expect(frag.textContent).toContain('<sup class="llmgrid-cite evil">');
  });
});
