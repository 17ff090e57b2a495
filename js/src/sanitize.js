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
 * Sanitise HTML produced by the Markdown renderer into a fragment ready to insert: through the
 * fast path when it can vouch for the HTML, else through DOMPurify.
 * @param {string} html @returns {DocumentFragment}
 */
export function sanitizeMarkdownHtml(html) {
  return vouchForMarkdownHtml(html) ?? purifyMarkdownHtml(html);
}

/**
 * Sanitise with DOMPurify alone (the reference the fast path is tested against).
 * @param {string} html @returns {DocumentFragment}
 */
export function purifyMarkdownHtml(html) {
  return /** @type {DocumentFragment} */ (/** @type {unknown} */ (getPurifier("markdown").sanitize(html)));
}

// The fast path. DOMPurify parses every input into a new Document: for the Markdown tail, which
// is sanitised for every streaming pane on every frame, that was the widget's largest single
// cost (a third of its script time, and a Document of garbage per pane per frame). The HTML the
// Markdown renderer makes is almost always plain: allow-listed tags, text, a few attributes.
// Such HTML is parsed in a reused inert <template> and checked; anything else (another tag or
// attribute, a comment, a URL DOMPurify would drop, an untrimmed value) returns
// null and goes to DOMPurify. Where the fast path answers, its DOM equals DOMPurify's (tested).

const HTML_NS = "http://www.w3.org/1999/xhtml";
const VOUCHED_TAGS = new Set(MARKDOWN_TAGS.map((t) => t.toUpperCase()));
/** Attributes DOMPurify keeps whatever their value (its URI-safe list), and href, checked below. */
const VOUCHED_ATTRS = new Set(["href", "title", "class"]);
/** DOMPurify's whitespace strip before its URL check, and its SAFE_FOR_XML attribute probe. (Its
 * probe for markup in an element's text can never fire here: with text children only, an
 * element's innerHTML has every "<" escaped.) */
const ATTR_WHITESPACE = /[\u0000-\u0020\u00A0\u1680\u180E\u2000-\u2029\u205F\u3000]/g;
const ATTR_VALUE_BREAKOUT = /((--!?|])>)|<\/(style|script|title|xmp|textarea|noscript|iframe|noembed|noframes)/i;

/** @type {HTMLTemplateElement | null} */
let template = null;

/**
 * A sanitised fragment of `html` when every node is one the policy keeps unchanged, else null.
 * @param {string} html @returns {DocumentFragment | null}
 */
export function vouchForMarkdownHtml(html) {
  template ??= document.createElement("template");
  try {
    template.innerHTML = html; // inert: nothing in a template's content loads or runs
  } catch {
    return null; // e.g. a page that enforces Trusted Types: DOMPurify knows how to ask
  }
  const content = template.content;
  /** @type {Element[]} */
  const elements = [];
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_ALL);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.nodeType === 3) continue;
    if (node.nodeType !== 1) return null;
    const el = /** @type {Element} */ (node);
    if (!VOUCHED_TAGS.has(el.nodeName) || el.namespaceURI !== HTML_NS) return null;
    for (const attr of el.attributes) {
      const value = attr.value;
      if (!VOUCHED_ATTRS.has(attr.name) || attr.namespaceURI !== null) return null;
      if (value !== value.trim() || ATTR_VALUE_BREAKOUT.test(value)) return null;
      if (attr.name === "href" && !SAFE_URL.test(value.replace(ATTR_WHITESPACE, ""))) return null;
    }
    elements.push(el);
  }
  for (const el of elements) afterSanitizeAttributes(el);
  const fragment = document.createDocumentFragment();
  fragment.append(...content.childNodes);
  return fragment;
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
