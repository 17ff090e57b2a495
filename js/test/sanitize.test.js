import { describe, expect, it } from "vitest";
import { markdownToHtml, renderMarkdown } from "../src/markdown.js";
import {
  fragmentToHtml,
  isSafeUrl,
  purifyMarkdownHtml,
  sanitizeInlineHtml,
  sanitizeMarkdownHtml,
  vouchForMarkdownHtml,
} from "../src/sanitize.js";

/** @param {string} html */
const clean = (html) => {
  const div = document.createElement("div");
  div.appendChild(sanitizeMarkdownHtml(html));
  return div;
};

describe("sanitizeMarkdownHtml", () => {
  it("removes script, style, iframe, object, form and their kin", () => {
    const div = clean(
      '<p>ok</p><script>alert(1)</script><style>body{display:none}</style><iframe src="https://e.test"></iframe>' +
        '<object data="x"></object><embed src="x"><form action="https://e.test"><input type="text" name="q"></form>' +
        '<svg><script>alert(2)</script></svg><math></math><link rel="stylesheet" href="x"><meta http-equiv="refresh">',
    );
    for (const tag of ["script", "style", "iframe", "object", "embed", "form", "svg", "math", "link", "meta"]) {
      expect(div.querySelector(tag), tag).toBeNull();
    }
    expect(div.querySelector("p")?.textContent).toBe("ok");
  });

  it("removes on* attributes, inline styles, ids and data attributes", () => {
    const div = clean('<p onclick="alert(1)" style="position:fixed;inset:0" id="x" data-x="1" onmouseover="alert(2)">t</p><a href="https://e.test" onfocus="x()">l</a>');
    const html = div.innerHTML;
    expect(html).not.toMatch(/on\w+=|style=|id=|data-x/);
  });

  it("keeps http(s) and mailto links and drops every other href", () => {
    const div = clean(
      '<a href="https://ok.test/a">1</a><a href="http://ok.test">2</a><a href="mailto:a@b.test">3</a>' +
        '<a href="javascript:alert(1)">4</a><a href="JaVaScRiPt:alert(1)">5</a><a href="  javascript:alert(1)">6</a>' +
        '<a href="data:text/html,<script>alert(1)</script>">7</a><a href="vbscript:x">8</a><a href="/relative">9</a><a href="java&#x09;script:alert(1)">10</a>',
    );
    const hrefs = [...div.querySelectorAll("a")].map((a) => a.getAttribute("href"));
    expect(hrefs).toEqual(["https://ok.test/a", "http://ok.test", "mailto:a@b.test", null, null, null, null, null, null, null]);
  });

  it("makes every link open in a new tab without an opener", () => {
    const div = clean('<a href="https://ok.test">x</a><a href="javascript:x">y</a><a target="_self" href="https://ok.test">z</a>');
    for (const a of div.querySelectorAll("a")) {
      expect(a.getAttribute("target")).toBe("_blank");
      expect(a.getAttribute("rel")).toBe("noopener noreferrer");
    }
  });

  it("drops images, even http(s) ones, so nothing is fetched automatically", () => {
    const div = clean('<img src="https://tracker.test/p.gif"><img src="x" onerror="alert(1)"><p>t</p>');
    expect(div.querySelector("img")).toBeNull();
  });

  it("keeps only language-* classes on code", () => {
    const div = clean('<pre class="jp-Dialog"><code class="language-js evil">x</code></pre><p class="llmgrid-root">y</p>');
    expect(div.querySelector("pre")?.hasAttribute("class")).toBe(false);
    expect(div.querySelector("code")?.getAttribute("class")).toBe("language-js");
    expect(div.querySelector("p")?.hasAttribute("class")).toBe(false);
  });

  it("turns inputs into disabled checkboxes", () => {
    const div = clean('<input type="text" value="x"><input type="checkbox" checked>');
    for (const input of div.querySelectorAll("input")) {
      expect(input.getAttribute("type")).toBe("checkbox");
      expect(input.hasAttribute("disabled")).toBe(true);
    }
  });
});

describe("Markdown through the sanitiser", () => {
  it("neutralises hostile Markdown links and raw HTML", () => {
    const html = fragmentToHtml(
      renderMarkdown(
        '[a](javascript:alert(1)) [b](data:text/html;base64,PHNjcmlwdD4=) [c](https://ok.test "t") <https://auto.test> <a href="javascript:x" onclick="y">raw</a>\n\n<script>alert(1)</script>\n\n![x](https://e.test/i.png)',
      ),
    );
    const div = document.createElement("div");
    div.innerHTML = html;
    expect(div.querySelector("script")).toBeNull();
    expect(div.querySelector("img")).toBeNull();
    // The raw <a onclick> is shown as text, not interpreted.
    expect(div.querySelector("[onclick]")).toBeNull();
    expect(div.textContent).toContain('<a href="javascript:x" onclick="y">raw</a>');
    const hrefs = [...div.querySelectorAll("a[href]")].map((a) => a.getAttribute("href"));
    expect(hrefs).toEqual(["https://ok.test", "https://auto.test", "https://e.test/i.png"]);
    for (const a of div.querySelectorAll("a")) expect(a.getAttribute("rel")).toBe("noopener noreferrer");
  });
});

describe("sanitizeInlineHtml", () => {
  it("keeps <strong> in search snippets and drops everything active", () => {
    const div = document.createElement("div");
    div.appendChild(sanitizeInlineHtml('<strong>Slow start</strong> <img src=x onerror=alert(1)><script>alert(2)</script><a href="javascript:x" onclick="y">click</a>'));
    expect(div.innerHTML).toBe("<strong>Slow start</strong> click");
  });
});

describe("isSafeUrl", () => {
  it.each([
    ["https://a.test", true],
    ["HTTP://a.test", true],
    ["mailto:x@y.test", true],
    ["javascript:alert(1)", false],
    [" javascript:alert(1)", false],
    ["java\tscript:alert(1)", false],
    ["data:text/html,x", false],
    ["//evil.test", false],
    ["", false],
  ])("%j -> %s", (url, ok) => expect(isSafeUrl(url)).toBe(ok));
});

const MARKDOWN = [
  "# Title with `code` and *emphasis*",
  "",
  "A paragraph with a [link](https://example.com \"its title\"), <https://auto.test/x?a=1&b=2>, mailto:a@b.test,",
  "**strong**, ~~struck~~, a citation [1], an escaped \\* star, a < b > c & d, and a hard  ",
  "break.",
  "",
  "1. first",
  "2. second with [a relative link](/x) and [a script link](javascript:alert(1))",
  "",
  "5. starts at five",
  "",
  "- [ ] task",
  "- [x] done",
  "",
  "> quote with <b>raw html</b> and ![an image](https://x.test/a.png)",
  "",
  "| left | right |",
  "|:-----|------:|",
  "| 1 | 2 |",
  "",
  "```js",
  "const x = '<script>alert(1)</script>';",
  "```",
  "",
  "<div onclick=\"x()\">raw block</div>",
  "",
  "***",
  "",
  "Final words <!-- a comment --> and [t](https://t.test ' spaced ').",
].join("\n");

describe("the fast path (vouchForMarkdownHtml)", () => {
  it("gives exactly DOMPurify's DOM wherever it answers, over every prefix of a Markdown answer", () => {
    let vouched = 0;
    let total = 0;
    for (let end = 1; end <= MARKDOWN.length; end += 2) {
      const html = markdownToHtml(MARKDOWN.slice(0, end));
      const fast = vouchForMarkdownHtml(html);
      total += 1;
      if (fast === null) continue;
      vouched += 1;
      expect(fragmentToHtml(fast), `prefix ${end}`).toBe(fragmentToHtml(purifyMarkdownHtml(html)));
    }
    // The prefixes before the first ordered list starting past 1 are plain: most are vouched for.
    expect(vouched / total).toBeGreaterThan(0.2);
    // A streaming paragraph, the usual tail, always is.
    const tail = markdownToHtml("Some *streaming* text with `code`, a [link](https://x.test) and [2]");
    expect(vouchForMarkdownHtml(tail)).not.toBeNull();
  });

  it("leaves every hostile or unusual input to DOMPurify", () => {
    const hostile = [
      "<p>a</p><script>alert(1)</script>",
      '<p onclick="x()">a</p>',
      '<a href="javascript:alert(1)">x</a>',
      '<a href=" https://ok.test">padded</a>',
      '<a href="java&#x09;script:alert(1)">x</a>',
      '<a href="/relative">x</a>',
      '<a href="https://x.test" style="color:red">x</a>',
      '<img src="x" onerror="alert(1)">',
      "<svg><a href=\"https://x.test\">x</a></svg>",
      "<p>a<!-- comment --></p>",
      '<p title="--&gt;">x</p>',
      '<ol start="3"><li>x</li></ol>',
      '<input type="checkbox" checked="">',
      "<math><mi>x</mi></math>",
      "<form><input name=x></form>",
    ];
    for (const html of hostile) expect(vouchForMarkdownHtml(html), html).toBeNull();
  });

  it("applies the same link policy as DOMPurify", () => {
    const html = '<p><a href="https://ok.test/a" title="t">x</a> <a href="mailto:a@b.test">m</a> <code>Vec&lt;T&gt;</code></p>';
    const fast = vouchForMarkdownHtml(html);
    expect(fast).not.toBeNull();
    expect(fragmentToHtml(/** @type {DocumentFragment} */ (fast))).toBe(fragmentToHtml(purifyMarkdownHtml(html)));
    expect(fragmentToHtml(/** @type {DocumentFragment} */ (vouchForMarkdownHtml(html)))).toContain('target="_blank" rel="noopener noreferrer"');
  });
});
