// DOM helpers of every view: elements built once, text and attributes written only when they change.
// Task text only ever goes through textContent and attributes, never through HTML.

export function element(tag, className, attributes) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

/**
 * Text of `node`: one Text child changed in place (cheaper than replacing it, and no read of
 * the element's whole text), or none when empty so that `:empty` matches.
 */
export function setText(node, text) {
  const child = node.firstChild;
  if (child !== null && child.nodeType === Node.TEXT_NODE && child.nextSibling === null) {
    if (child.data === text) return;
    if (text) {
      child.data = text;
      return;
    }
  } else if (child === null && !text) {
    return;
  }
  node.textContent = text;
}

export function setAttribute(node, name, value) {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}
