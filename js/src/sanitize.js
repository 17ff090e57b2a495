// The one boundary where untrusted HTML (rendered model output, search-API descriptions) becomes
// DOM. An allow-list DOMPurify instance of our own, so its hooks never touch other widgets'.
//
// Policy: only tags Markdown produces; no style/id/data-*/on* attributes; links keep their href
// only for http:, https: and mailto: and always open in a new tab without an opener; no images
// (the Markdown renderer turns them into links, raw <img> is dropped) so that model output cannot
// make the browser fetch a URL on its own; classes only as `language-*` on <code> and
// `llmgrid-cite` on <sup>.

import createDOMPurify from "dompurify";

/** @typedef {ReturnType<typeof createDOMPurify>} Purifier */

const SAFE_URL = /^(?:https?|mailto):/i;

const MARKDOWN_TAGS = [
  "a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "s",
  "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
  "input", "sup", "sub", "span",
];
const MARKDOWN_ATTRS = ["href", "title", "class", "start", "align", "type", "checked", "disabled"];
const INLINE_TAGS = ["strong", "b", "em", "i", "code", "mark", "br", "span"];

/**
 * One purifier per policy, configured once (`setConfig`). A config passed with each call is
 * parsed again on each call, and the Markdown tail is sanitised for every pane on every frame:
 * measured, that parsing was 30 % of everything the widget allocated while streaming.
 * @type {Map<string, Purifier>}
 */
const purifiers = new Map();

/** @param {Node} node */
function afterSanitizeAttributes(node) {
  if (node.nodeType !== 1) return;
  const el = /** @type {Element} */ (node);
  const tag = el.nodeName;
  if (tag === "A") {
    el.setAttribute("target", "_blank");
    el.setAttribute("rel", "noopener noreferrer");
  }
  if (el.hasAttribute("class")) {
    const classes = (el.getAttribute("class") ?? "").split(/\s+/);
    // Code blocks keep their language; citations [n] (rendered by markdown.js) keep their marker.
    const keep =
      tag === "CODE"
        ? classes.filter((c) => /^language-[\w+#.-]+$/.test(c))
        : tag === "SUP"
          ? classes.filter((c) => c === "llmgrid-cite")
          : [];
    if (keep.length) el.setAttribute("class", keep.join(" "));
    else el.removeAttribute("class");
  }
  if (tag === "INPUT") {
    el.setAttribute("type", "checkbox");
    el.setAttribute("disabled", "");
  }
}

/** What each policy allows (see the header comment). */
const POLICIES = {
  markdown: { ALLOWED_TAGS: MARKDOWN_TAGS, ALLOWED_ATTR: MARKDOWN_ATTRS, ALLOWED_URI_REGEXP: SAFE_URL },
  inline: { ALLOWED_TAGS: INLINE_TAGS, ALLOWED_ATTR: [] },
};

/** @param {keyof typeof POLICIES} policy @returns {Purifier} */
function getPurifier(policy) {
  let p = purifiers.get(policy);
  if (p) return p;
  p = createDOMPurify(window);
  p.addHook("afterSanitizeAttributes", afterSanitizeAttributes);
  p.setConfig({ ...POLICIES[policy], ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false, RETURN_DOM_FRAGMENT: true });
  purifiers.set(policy, p);
  return p;
}

/** @param {string} url */
export function isSafeUrl(url) {
  return SAFE_URL.test(url.replace(/[\u0000-\u0020]/g, ""));
}

/**
 * Sanitise HTML produced by the Markdown renderer into a fragment ready to insert.
 * @param {string} html @returns {DocumentFragment}
 */
export function sanitizeMarkdownHtml(html) {
  return /** @type {DocumentFragment} */ (/** @type {unknown} */ (getPurifier("markdown").sanitize(html)));
}

/**
 * Sanitise a search-API snippet (HTML such as `<strong>`) to inline formatting only.
 * @param {string} html @returns {DocumentFragment}
 */
export function sanitizeInlineHtml(html) {
  return /** @type {DocumentFragment} */ (/** @type {unknown} */ (getPurifier("inline").sanitize(html)));
}

/** @param {DocumentFragment} fragment */
export function fragmentToHtml(fragment) {
  const div = document.createElement("div");
  div.appendChild(fragment);
  return div.innerHTML;
}
