// Sparklines: inline SVG cloned from the page's template (so no namespace is spelled here),
// one path through a series' points by time, broken where a value is missing.

import { formatMetric } from "./format.js";

const WIDTH = 100;
const HEIGHT = 24;
/** Room at the top and bottom, so a flat line and the extremes stay visible. */
const MARGIN = 2;

function template() {
  return document.getElementById("sparkline-template").content.firstElementChild;
}

/** The path through `values` at `times`; empty when fewer than two of them are numbers. */
export function sparkPath(times, values) {
  let low = Infinity;
  let high = -Infinity;
  let count = 0;
  for (const value of values) {
    if (typeof value !== "number") continue;
    count += 1;
    if (value < low) low = value;
    if (value > high) high = value;
  }
  if (count < 2) return { d: "", low, high, count };
  const start = times[0];
  const span = times[times.length - 1] - start || 1;
  const range = high - low || 1;
  const parts = [];
  let drawing = false;
  for (let i = 0; i < values.length; i += 1) {
    const value = values[i];
    if (typeof value !== "number") {
      drawing = false;
      continue;
    }
    const x = ((times[i] - start) / span) * WIDTH;
    const y = HEIGHT - MARGIN - ((value - low) / range) * (HEIGHT - 2 * MARGIN);
    parts.push((drawing ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1));
    drawing = true;
  }
  return { d: parts.join(""), low, high, count };
}

/** One sparkline; `draw` replaces its path and says what it shows to screen readers. */
export class Sparkline {
  constructor(name) {
    this.name = name;
    this.node = template().cloneNode(true);
    this.path = this.node.querySelector("path");
    this.node.classList.add("empty");
  }

  draw(times, values, format = formatMetric) {
    const { d, low, high, count } = sparkPath(times, values);
    this.node.classList.toggle("empty", !d);
    if (this.path.getAttribute("d") !== d) this.path.setAttribute("d", d);
    const label = d ? `${this.name}: ${count} points, lowest ${format(low)}, highest ${format(high)}` : "";
    if (this.node.getAttribute("aria-label") !== label) this.node.setAttribute("aria-label", label);
  }
}
