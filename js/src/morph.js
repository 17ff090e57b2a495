// Patches live DOM to equal a freshly rendered fragment while keeping the nodes that did not
// change. A streaming tail is re-rendered every frame, but between two frames usually only its
// last text node grew: patching keeps every other node, so the browser re-styles nothing and
// re-lays out only the text that changed, and the old nodes do not become garbage.

/** @param {Node} a @param {Node} b whether `a` can become `b` by patching its contents */
function sameShell(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return false;
  if (!(a instanceof Element) || !(b instanceof Element)) return true;
  const want = b.attributes;
  if (a.attributes.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) {
    if (a.getAttribute(want[i].name) !== want[i].value) return false;
  }
  return true;
}

/**
 * Give a text node `data`, appending when it only grew. @returns {boolean} whether it changed
 * @param {CharacterData} node @param {string} data
 */
export function setData(node, data) {
  if (node.data === data) return false;
  if (data.startsWith(node.data)) node.appendData(data.slice(node.data.length));
  else node.data = data;
  return true;
}

/**
 * Set an element's text, reusing its text node: `textContent =` makes a new node each time, and
 * header figures change on every frame of every streaming pane.
 * @param {Element} el @param {string} text
 */
export function setText(el, text) {
  const node = el.firstChild;
  if (node && node === el.lastChild && node.nodeType === 3) setData(/** @type {Text} */ (node), text);
  else el.textContent = text;
}

/**
 * Make `target`'s children from index `start` on equal `source`'s children, moving nodes out of
 * `source` only where no existing node can be patched. With `truncate`, children past the
 * patched range are removed; without it they are kept (patching a prefix).
 * @param {Node} target @param {Node} source @param {number} [start] @param {boolean} [truncate]
 * @returns {boolean} whether the DOM changed
 */
export function morphChildren(target, source, start = 0, truncate = true) {
  const wanted = Array.from(source.childNodes);
  const have = target.childNodes;
  let changed = false;
  for (let i = 0; i < wanted.length; i++) {
    const current = have[start + i];
    const next = wanted[i];
    if (!current) {
      target.appendChild(next);
      changed = true;
    } else if (!sameShell(current, next)) {
      target.replaceChild(next, current);
      changed = true;
    } else if (current instanceof CharacterData) {
      if (setData(current, /** @type {CharacterData} */ (next).data)) changed = true;
    } else if (morphChildren(current, next)) {
      changed = true;
    }
  }
  if (truncate) {
    while (have.length > start + wanted.length) {
      /** @type {ChildNode} */ (target.lastChild).remove();
      changed = true;
    }
  }
  return changed;
}

// The commonest frame of a streaming tail: its HTML grew only by text just before its closing
// tags (`<p>Hello wor</p>\n` → `<p>Hello world, th</p>\n`). Then the DOM needs only that text
// appended to one text node: no HTML parse, no sanitising, no new nodes (so no garbage for the
// page's collector). Any other change returns false and the caller re-renders.

/** The five entities the Markdown renderer escapes text with. @type {Record<string, string>} */
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };
const ENTITY = new RegExp(Object.keys(ENTITIES).join("|"), "g");
/** Text as the Markdown renderer escapes it: no markup, only those entities. */
const PLAIN_TEXT = new RegExp(`^(?:[^<>&]|${ENTITY.source})*$`);
/** What may follow the insertion point: closing tags and whitespace, nothing else. */
const CLOSERS = /^(?:<\/[a-z][a-z0-9]*>|[ \t\n]+)*$/;
const CLOSER_TOKEN = /<\/[a-z][a-z0-9]*>|[ \t\n]+/g;

/**
 * Given that `container`'s last nodes are the DOM of `oldHtml`, make them the DOM of `newHtml`
 * when the only difference is text inserted before the closing tags at the end.
 * @param {Node} container @param {string} oldHtml @param {string} newHtml
 * @returns {boolean} whether it did (false: nothing was touched)
 */
export function appendTextByHtml(container, oldHtml, newHtml) {
  if (newHtml.length <= oldHtml.length) return false;
  let p = 0;
  while (p < oldHtml.length && oldHtml.charCodeAt(p) === newHtml.charCodeAt(p)) p++;
  const suffix = oldHtml.slice(p);
  // The text must sit inside an element of the old HTML, never loose among the container's nodes.
  if (!suffix.includes("</") || !CLOSERS.test(suffix) || !newHtml.endsWith(suffix)) return false;
  const inserted = newHtml.slice(p, newHtml.length - suffix.length);
  if (!PLAIN_TEXT.test(inserted)) return false;

  const tokens = suffix.match(CLOSER_TOKEN) ?? [];
  // Whitespace right at the insertion point belongs to the text node that grows.
  const lead = tokens[0]?.[0] === "<" ? "" : (tokens.shift() ?? "");
  /** @type {Node | null} */
  let node = container.lastChild;
  for (let i = tokens.length - 1; i >= 0 && node; i--) {
    const token = tokens[i];
    if (token[0] === "<") {
      if (node.nodeType !== 1 || node.nodeName.toLowerCase() !== token.slice(2, -1)) return false;
      node = node.lastChild;
    } else {
      if (node.nodeType !== 3 || /** @type {Text} */ (node).data !== token) return false;
      node = node.previousSibling;
    }
  }
  if (!node || node.nodeType !== 3) return false;
  const text = /** @type {Text} */ (node);
  if (!text.data.endsWith(lead)) return false;
  text.insertData(text.length - lead.length, inserted.replace(ENTITY, (e) => ENTITIES[e]));
  return true;
}
