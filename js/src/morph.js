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
