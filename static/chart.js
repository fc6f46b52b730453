// A job's run durations as inline SVG: one mark per run, its outcome by shape and colour,
// and the median as a labelled line. No layout is measured: the viewBox scales with the page.

import { CLOSE, ERROR, RUN_ABANDONED } from "./contract.js";
import { formatRunDuration } from "./format.js";

const WIDE = 900;
/** Narrow screens get a narrower drawing, so its text stays readable when scaled down. */
const NARROW = 420;
const NARROW_QUERY = "(max-width: 600px)";
const HEIGHT = 240;
const PAD = { left: 52, right: 16, top: 14, bottom: 26 };
const MARK = 6;

/** Outcome of a run: its legend text and the shape that marks it. */
export const OUTCOMES = {
  [CLOSE]: { label: "closed", shape: "circle" },
  [ERROR]: { label: "error", shape: "cross" },
  [RUN_ABANDONED]: { label: "abandoned", shape: "square" },
};

/** SVG's namespace, read from the page's chart so that no address is spelled here. */
function namespace() {
  return document.getElementById("run-chart").namespaceURI;
}

function svg(tag, attributes) {
  const node = document.createElementNS(namespace(), tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
  return node;
}

/** The mark for `status` centred on x, y. */
export function shape(status, x, y, size = MARK) {
  const kind = (OUTCOMES[status] || OUTCOMES[CLOSE]).shape;
  if (kind === "circle") return svg("circle", { cx: x, cy: y, r: size });
  if (kind === "square") return svg("rect", { x: x - size, y: y - size, width: 2 * size, height: 2 * size });
  const d = `M${x - size} ${y - size}L${x + size} ${y + size}M${x - size} ${y + size}L${x + size} ${y - size}`;
  return svg("path", { d });
}

/** A small SVG of one outcome's mark, for the legend. */
export function legendMark(status) {
  const node = svg("svg", { viewBox: "0 0 16 16", width: 16, height: 16, "aria-hidden": "true", class: "mark" });
  const mark = shape(status, 8, 8, 5);
  mark.classList.add("run-" + status);
  node.appendChild(mark);
  return node;
}

/** Draw `runs` (oldest first) into `node`, an <svg role=img>; `median` in seconds or null. */
export function drawChart(node, runs, median) {
  node.replaceChildren();
  const width = matchMedia(NARROW_QUERY).matches ? NARROW : WIDE;
  node.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  const top = Math.max(median || 0, ...runs.map((run) => run.duration), 1e-3) * 1.15;
  const plotWidth = width - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const yOf = (seconds) => PAD.top + plotHeight * (1 - seconds / top);
  const step = runs.length > 1 ? plotWidth / (runs.length - 1) : 0;
  const xOf = (index) => PAD.left + (runs.length > 1 ? index * step : plotWidth / 2);
  node.append(
    svg("line", { class: "axis", x1: PAD.left, y1: yOf(0), x2: width - PAD.right, y2: yOf(0) }),
    svg("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: yOf(0) }),
    axisLabel(PAD.left - 6, yOf(0), "0s"),
    axisLabel(PAD.left - 6, PAD.top + 4, formatRunDuration(top)),
  );
  if (typeof median === "number") {
    const y = yOf(median);
    node.append(
      svg("line", { class: "median", x1: PAD.left, y1: y, x2: width - PAD.right, y2: y }),
      text(width - PAD.right, y - 5, "median " + formatRunDuration(median), "end", "median-label"),
    );
  }
  runs.forEach((run, index) => {
    const mark = shape(run.status, xOf(index), yOf(run.duration));
    mark.setAttribute("class", "run-mark run-" + run.status);
    mark.dataset.runId = run.id;
    node.appendChild(mark);
  });
}

function text(x, y, content, anchor, className) {
  const node = svg("text", { x, y, "text-anchor": anchor, class: className });
  node.textContent = content;
  return node;
}

function axisLabel(x, y, content) {
  return text(x, y + 4, content, "end", "axis-label");
}
