// Long lists of bars in blocks of CHUNK_SIZE: each block is a list of its own with
// `content-visibility: auto`, so the browser skips styling, laying out and painting the blocks
// off screen and tracks a few hundred blocks, not every bar, to know which are near the screen.

import { element } from "./dom.js";

export const CHUNK_SIZE = 16;

/** Place `nodes` as the children of `parent`, in order, moving only what is out of place. */
export function reconcile(parent, nodes) {
  const wanted = new Set(nodes);
  for (let child = parent.firstChild; child;) {
    const next = child.nextSibling;
    if (!wanted.has(child)) parent.removeChild(child);
    child = next;
  }
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(node, cursor);
    }
  }
}

/** The bar after `node` in its list, else the one before it, across blocks; null when alone. */
export function neighbourOf(node) {
  const chunk = node.parentElement;
  const next = chunk.nextElementSibling;
  const previous = chunk.previousElementSibling;
  return node.nextElementSibling || (next && next.firstElementChild)
    || node.previousElementSibling || (previous && previous.lastElementChild) || null;
}

/** The blocks of one list element (`container`); each block made is handed to `watch`. */
export class ChunkedList {
  constructor(container, watch) {
    this.container = container;
    this.watch = watch;
    this.chunks = [];
  }

  /** Show `nodes` in this order, CHUNK_SIZE to a block. */
  place(nodes) {
    const count = Math.ceil(nodes.length / CHUNK_SIZE);
    while (this.chunks.length < count) {
      const chunk = element("ul", "chunk");
      this.watch.observe(chunk);
      this.chunks.push(chunk);
    }
    for (const chunk of this.chunks.splice(count)) {
      this.watch.unobserve(chunk);
      chunk.remove();
    }
    reconcile(this.container, this.chunks);
    this.chunks.forEach((chunk, index) =>
      reconcile(chunk, nodes.slice(index * CHUNK_SIZE, (index + 1) * CHUNK_SIZE)));
  }
}
