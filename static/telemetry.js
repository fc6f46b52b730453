// A card's telemetry: postfix and metrics (each with its sparkline), and the log disclosure
// whose summary is the last line and which, opened, shows the tail the daemon keeps.

import { fetchLog } from "./api.js";
import { element, setText } from "./dom.js";
import { formatMetric } from "./format.js";
import { Sparkline } from "./sparkline.js";

/** An open log is fetched again at most this often while its task keeps logging. */
const LOG_REFRESH_MS = 1000;

class MetricItem {
  constructor(key) {
    this.node = element("li", "metric");
    const name = element("span", "metric-name");
    name.textContent = key;
    this.value = element("span", "metric-value");
    this.spark = new Sparkline(key);
    this.node.append(name, this.value, this.spark.node);
  }
}

/** Postfix text and one item per metric, in the order the task lists them. */
export class TelemetryView {
  constructor() {
    this.node = element("div", "telemetry");
    this.postfix = element("span", "postfix");
    this.list = element("ul", "metrics", { "aria-label": "Metrics" });
    this.node.append(this.postfix, this.list);
    this.items = new Map();
    this.keys = "";
  }

  update(task) {
    const metrics = task.metrics && typeof task.metrics === "object" ? task.metrics : {};
    const postfix = typeof task.postfix === "string" ? task.postfix : "";
    setText(this.postfix, postfix);
    const keys = Object.keys(metrics);
    this.node.hidden = !postfix && keys.length === 0;
    const joined = keys.join("\u0000");
    if (joined !== this.keys) {
      this.keys = joined;
      for (const key of [...this.items.keys()]) if (!(key in metrics)) this.items.delete(key);
      const nodes = keys.map((key) => {
        let item = this.items.get(key);
        if (!item) {
          item = new MetricItem(key);
          this.items.set(key, item);
        }
        return item.node;
      });
      this.list.replaceChildren(...nodes);
    }
    for (const key of keys) setText(this.items.get(key).value, formatMetric(metrics[key]));
  }

  drawSparks(series) {
    for (const [key, item] of this.items) {
      item.spark.draw(series.t, series.metrics.get(key) || []);
    }
  }
}

/** The last log line as a disclosure's summary; opened, the tail, fetched then refreshed. */
export class LogView {
  constructor(taskId) {
    this.taskId = taskId;
    this.node = element("details", "log");
    const summary = element("summary");
    const label = element("span", "log-label");
    label.textContent = "Log";
    this.count = element("span", "log-count");
    this.last = element("code", "last-log");
    summary.append(label, this.count, this.last);
    this.tail = element("pre", "log-tail", { tabindex: "0", "aria-label": "Log of " + taskId });
    this.node.append(summary, this.tail);
    this.node.hidden = true;
    this.seen = "";
    this.fetching = false;
    this.fetchedAt = 0;
    this.timer = null;
    this.node.addEventListener("toggle", () => {
      if (this.node.open) this.refresh();
    });
  }

  update(task) {
    const count = task.log_lines || 0;
    this.node.hidden = count === 0;
    setText(this.count, count === 1 ? "1 line" : count + " lines");
    setText(this.last, typeof task.last_log === "string" ? task.last_log : "");
    const seen = count + "\u0000" + (task.last_log || "");
    if (seen !== this.seen) {
      this.seen = seen;
      if (this.node.open) this.refreshSoon();
    }
  }

  refreshSoon() {
    if (this.timer !== null || this.fetching) return;
    const wait = Math.max(0, this.fetchedAt + LOG_REFRESH_MS - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, wait);
  }

  refresh() {
    if (this.fetching) return;
    this.fetching = true;
    const asked = this.seen;
    fetchLog(this.taskId)
      .then((body) => setText(this.tail, body.lines.join("\n")))
      .catch((error) => setText(this.tail, error.message))
      .finally(() => {
        this.fetching = false;
        this.fetchedAt = performance.now();
        if (this.node.open && this.seen !== asked) this.refreshSoon();
      });
  }
}
