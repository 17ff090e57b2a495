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

// Most frames of a streaming tail change its HTML only near the end: text grew before the
// closing tags (`<p>Hello wor</p>\n` → `<p>Hello world, th</p>\n`), an inline element or a list
// item was added there (`… a <code>x</code></p>`), or the text's last characters turned into
// one (`` `code`` → `<code>code</code>`). Then the DOM needs only that end patched: the text node
// there trimmed and extended, and only the new elements parsed (a few dozen characters instead of
// the whole tail), so the rest of the tail is neither re-parsed, re-sanitised nor walked, and
// makes no garbage for the page's collector. Anything else returns false and the caller
// re-renders.

/** The five entities the Markdown renderer escapes text with. @type {Record<string, string>} */
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };
const ENTITY = new RegExp(Object.keys(ENTITIES).join("|"), "g");
/** Text as the Markdown renderer escapes it: no markup, only those entities. */
const PLAIN_TEXT = new RegExp(`^(?:[^<>&]|${ENTITY.source})*$`);
/** Closing tags and whitespace, the tokens that may follow the patched point. */
const CLOSER_TOKEN = /<\/[a-z][a-z0-9]*>|[ \t\n]+/g;
const CLOSING_TAG = /^<\/[a-z][a-z0-9]*>$/;
/** A closing tag with the whitespace after it: where a run of closers may be cut in two. */
const CLOSER_END = /<\/[a-z][a-z0-9]*>[ \t\n]*/g;
/** A start or end tag as the Markdown renderer writes them (attribute values escaped). */
const TAG = /<(\/?)([a-z][a-z0-9]*)(?:\s[^<>]*)?>/g;
/** Elements without an end tag, among those the Markdown renderer writes. */
const VOID = new Set(["br", "hr", "img", "input", "wbr"]);

/** Where the closing tags and whitespace at the end of `html` start (a backward scan). @param {string} html */
function closersStart(html) {
  let i = html.length;
  while (i > 0) {
    const c = html[i - 1];
    if (c === " " || c === "\t" || c === "\n") i -= 1;
    else if (c === ">") {
      const lt = html.lastIndexOf("<", i - 1);
      if (lt < 0 || !CLOSING_TAG.test(html.slice(lt, i))) break;
      i = lt;
    } else break;
  }
  return i;
}

/** @param {string} text */
const decode = (text) => text.replace(ENTITY, (e) => ENTITIES[e]);

/**
 * Whether `html` is plain text and whole elements only: every tag it opens it closes, and it
 * closes none it did not open. @param {string} html
 */
export function isBalancedHtml(html) {
  /** @type {string[]} */
  const open = [];
  TAG.lastIndex = 0;
  for (let m = TAG.exec(html); m; m = TAG.exec(html)) {
    if (!m[1]) {
      if (!VOID.has(m[2])) open.push(m[2]);
    } else if (open.pop() !== m[2]) return false;
  }
  return open.length === 0 && PLAIN_TEXT.test(html.replace(TAG, ""));
}

/** A frame's change is patched in at most this many steps. */
const MAX_STEPS = 4;

/**
 * One frame may both grow the innermost element at the end and add elements after it, at any
 * level (`…cut in</li>\n</ul>` → `…cut in half;</li>\n<li>comments</li>\n</ul>`, or a paragraph
 * finished and the next one started). Patch in two steps: first the grown text, up to where
 * one of the old closing tags recurs in the new HTML, then what follows that tag.
 * @param {Node} container @param {string} oldHtml @param {string} newHtml
 * @param {(html: string) => DocumentFragment} parse
 * @param {number} p where the two differ @param {string} closers what follows it in the old
 * @param {number} depth
 */
function patchInSteps(container, oldHtml, newHtml, parse, p, closers, depth) {
  CLOSER_END.lastIndex = 0;
  for (let m = CLOSER_END.exec(closers); m; m = CLOSER_END.exec(closers)) {
    const inner = closers.slice(0, m.index + m[0].length);
    const q = newHtml.indexOf(inner, p);
    if (q < 0) continue;
    const grown = newHtml.slice(0, q) + closers;
    if (grown.length >= newHtml.length || grown === oldHtml) continue;
    if (!patchTailByHtml(container, oldHtml, grown, parse, depth + 1)) return false;
    return patchTailByHtml(container, grown, newHtml, parse, depth + 1);
  }
  return false;
}

/**
 * `container` ends with the DOM of `oldHtml`, which ends with whitespace after its last element:
 * append the nodes of `added` when it is whole elements (new blocks after the old ones).
 * @param {Node} container @param {string} oldHtml @param {string} added
 * @param {(html: string) => DocumentFragment} parse
 */
function appendBlocks(container, oldHtml, added, parse) {
  const space = oldHtml.slice(oldHtml.lastIndexOf(">") + 1);
  const last = container.lastChild;
  if (added[0] !== "<" || !/^[ \t\n]+$/.test(space) || !isBalancedHtml(added)) return false;
  if (last?.nodeType !== 3 || /** @type {Text} */ (last).data !== space) return false;
  container.appendChild(parse(added));
  return true;
}

/**
 * Given that `container`'s last nodes are the DOM of `oldHtml`, make them the DOM of `newHtml`
 * when the two differ only at one point before the closing tags at the end: plain text there
 * may be cut back, and plain text or whole elements added. `parse` turns HTML into sanitised
 * nodes; it is called only for added elements.
 * @param {Node} container @param {string} oldHtml @param {string} newHtml
 * @param {(html: string) => DocumentFragment} parse @param {number} [depth] steps taken so far
 * @returns {boolean} whether it did; when not, the DOM is the old one or part way to the new one,
 *   and the caller re-renders
 */
export function patchTailByHtml(container, oldHtml, newHtml, parse, depth = 0) {
  if (oldHtml === "" || oldHtml === newHtml) return false;
  let p = 0;
  const n = Math.min(oldHtml.length, newHtml.length);
  while (p < n && oldHtml.charCodeAt(p) === newHtml.charCodeAt(p)) p++;
  // The point of change may not fall inside a tag or an entity: back up to its start.
  const lt = oldHtml.lastIndexOf("<", p - 1);
  if (lt >= 0 && oldHtml.indexOf(">", lt) >= p) p = lt;
  const amp = oldHtml.lastIndexOf("&", p - 1);
  if (amp >= 0 && oldHtml.indexOf(";", amp) >= p) p = amp;
  // oldHtml = prefix + cut + closers, newHtml = prefix + added + closers.
  const rest = oldHtml.slice(p);
  const end = closersStart(rest);
  const closers = rest.slice(end);
  const cut = rest.slice(0, end);
  if (closers === "" && cut === "") return appendBlocks(container, oldHtml, newHtml.slice(p), parse);
  // The patched text must sit inside an element of the old HTML, never loose in the container.
  if (!closers.includes("</") || !PLAIN_TEXT.test(cut)) return false;
  const whole = newHtml.endsWith(closers) && newHtml.length - closers.length >= p;
  const added = whole ? newHtml.slice(p, newHtml.length - closers.length) : "";
  const markup = added.includes("<");
  if (!whole || (markup ? !isBalancedHtml(added) : !PLAIN_TEXT.test(added))) {
    return depth < MAX_STEPS && patchInSteps(container, oldHtml, newHtml, parse, p, closers, depth);
  }

  const tokens = closers.match(CLOSER_TOKEN) ?? [];
  // Whitespace right at the patched point belongs to the text node that is patched.
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
  const removed = decode(cut);
  const at = text.length - lead.length - removed.length;
  // The text node must hold exactly the old HTML's text from the last tag on.
  const kept = decode(oldHtml.slice(oldHtml.lastIndexOf(">", p - 1) + 1, p));
  const data = text.data;
  if (at !== kept.length || !data.startsWith(kept) || !data.endsWith(removed + lead)) return false;

  if (!markup) {
    text.replaceData(at, removed.length, decode(added));
    return true;
  }
  const nodes = Array.from(parse(added).childNodes);
  // The parser would join text at either end of the added nodes to the text around them.
  const first = nodes[0];
  const last = nodes[nodes.length - 1];
  const head = first?.nodeType === 3 ? /** @type {Text} */ (nodes.shift()).data : "";
  const tail = nodes.length > 0 && last?.nodeType === 3 ? /** @type {Text} */ (nodes.pop()).data : "";
  text.replaceData(at, removed.length, head);
  if (nodes.length === 0) return true;
  const split = at + head.length;
  const after = split < text.length ? text.splitText(split) : null;
  if (after && tail) after.insertData(0, tail);
  const parent = /** @type {Node} */ (text.parentNode);
  const before = after ?? text.nextSibling;
  for (const el of nodes) parent.insertBefore(el, before);
  if (tail && !after) parent.insertBefore(document.createTextNode(tail), before);
  if (text.length === 0) text.remove();
  return true;
}
