// DOM for one task bar and for one group of bars. Built once, then only text and a transform change.

import { ACTIVE_STATUSES, STALE } from "./contract.js";
import { element, setAttribute, setText } from "./dom.js";
import { fractionOf } from "./tasks.js";
import {
  formatAge, formatDuration, formatPercent, formatProgress, formatRate, isByteUnit,
} from "./format.js";
import { Sparkline } from "./sparkline.js";
import { LogView, TelemetryView } from "./telemetry.js";


/** A progress bar with role=progressbar; `fraction` null draws the indeterminate style. */
class Bar {
  constructor() {
    this.node = element("div", "bar", { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" });
    this.fill = element("div", "bar-fill");
    this.node.appendChild(this.fill);
    this.fraction = undefined;
  }

  set(fraction, label, valueText) {
    setAttribute(this.node, "aria-label", label);
    setAttribute(this.node, "aria-valuetext", valueText);
    if (fraction === this.fraction) return;
    this.fraction = fraction;
    const indeterminate = fraction === null;
    this.node.classList.toggle("indeterminate", indeterminate);
    setAttribute(this.node, "aria-valuenow", indeterminate ? null : (Math.round(fraction * 1000) / 10).toString());
    this.fill.style.transform = indeterminate ? "" : `scaleX(${fraction})`;
  }
}

/** The line of figures under a bar: amount, percentage, rate, ETA, elapsed, last update. */
class Stats {
  constructor() {
    this.node = element("div", "stats");
    this.amount = this.add("amount");
    this.percent = this.add("percent");
    this.rate = this.add("rate");
    this.eta = this.add("eta");
    this.elapsed = this.add("elapsed");
    this.age = this.add("age");
  }

  add(name) {
    const node = element("span", "stat stat-" + name);
    this.node.appendChild(node);
    return node;
  }
}

function labelled(prefix, value) {
  return value ? prefix + value : "";
}

function isRunning(task) {
  return ACTIVE_STATUSES.includes(task.status);
}

/** Seconds left, counted down from the daemon's estimate at the task's last update. */
function remainingSeconds(task, now) {
  if (typeof task.eta !== "number" || !isRunning(task)) return null;
  return Math.max(0, task.eta - Math.max(0, now - task.updated_at));
}

/** One task: description, id, status, discard button, bar, figures, telemetry and log. */
export class TaskRow {
  constructor(taskId) {
    this.taskId = taskId;
    this.task = null;
    this.visible = false;
    /** The series version the sparklines show; -1 before the first drawing. */
    this.sparksDrawn = -1;
    this.sparksDrawnAt = -Infinity;
    this.node = element("li", "task");
    this.node.dataset.taskId = taskId;
    const head = element("div", "head");
    this.desc = element("span", "desc");
    this.id = element("code", "task-id");
    this.status = element("span", "status");
    this.discard = element("button", "discard write-only", { type: "button", "data-action": "discard" });
    this.discard.textContent = "Discard";
    this.discard.setAttribute("aria-label", "Discard task " + taskId);
    this.id.textContent = taskId;
    const title = element("div", "title");
    title.append(this.desc, this.id);
    head.append(title, this.status, this.discard);
    this.bar = new Bar();
    this.stats = new Stats();
    // Made on first use: most bars of a busy board never carry telemetry or log lines.
    this.rateSpark = null;
    this.telemetry = null;
    this.log = null;
    this.node.append(head, this.bar.node, this.stats.node);
  }

  /** Draw the sparklines from `series` (rate, then each metric). */
  drawSparks(series, now) {
    this.sparksDrawn = series.version;
    this.sparksDrawnAt = now;
    if (!this.rateSpark) {
      this.rateSpark = new Sparkline("rate");
      this.stats.node.insertBefore(this.rateSpark.node, this.stats.eta);
    }
    const unit = this.task ? this.task.unit : null;
    this.rateSpark.draw(series.t, series.rate, (rate) => formatRate(rate, unit));
    if (this.telemetry) this.telemetry.drawSparks(series);
  }

  updateTelemetry(task) {
    if (!this.telemetry && (task.metrics || task.postfix)) {
      this.telemetry = new TelemetryView();
      this.stats.node.after(this.telemetry.node);
    }
    if (this.telemetry) this.telemetry.update(task);
    if (!this.log && task.log_lines) {
      this.log = new LogView(this.taskId);
      this.node.append(this.log.node);
    }
    if (this.log) this.log.update(task);
  }

  update(task, now) {
    this.task = task;
    const fraction = fractionOf(task);
    const desc = typeof task.desc === "string" && task.desc ? task.desc : task.task_id;
    setText(this.desc, desc);
    this.id.hidden = desc === task.task_id;
    setText(this.status, task.status);
    this.node.dataset.status = task.status;
    const amount = formatProgress(task.n || 0, task.total, task.unit);
    const percent = fraction === null ? "" : formatPercent(fraction);
    this.bar.set(fraction, desc, percent ? percent + ", " + amount : amount);
    setText(this.stats.amount, amount);
    setText(this.stats.percent, percent);
    setText(this.stats.rate, isRunning(task) ? formatRate(task.rate, task.unit) : "");
    this.updateTelemetry(task);
    this.tick(now);
  }

  /** Refresh the figures that move with the clock alone. */
  tick(now) {
    const task = this.task;
    if (!task) return;
    const remaining = remainingSeconds(task, now);
    setText(this.stats.eta, remaining === null ? "" : "ETA " + formatDuration(remaining));
    const end = task.done_at || (task.status === STALE && task.stale_at) || now;
    setText(this.stats.elapsed, labelled("elapsed ", formatDuration(end - task.created_at)));
    setText(this.stats.age, labelled("updated ", formatAge(Math.max(0, now - task.updated_at))));
  }
}

function sharedUnit(tasks) {
  const unit = tasks[0].unit || null;
  return tasks.every((task) => (task.unit || null) === unit) ? unit : undefined;
}

/** Several tasks folded into one line: name, count, aggregate bar; expands to show each. */
export class GroupRow {
  constructor(key, name) {
    this.key = key;
    this.node = element("li", "group");
    this.node.dataset.groupKey = key;
    const head = element("div", "head");
    this.toggle = element("button", "group-toggle", {
      type: "button", "data-action": "toggle-group", "aria-expanded": "false",
    });
    this.name = element("span", "group-name");
    this.name.textContent = name;
    this.count = element("span", "group-count");
    this.toggle.append(element("span", "chevron", { "aria-hidden": "true" }), this.name, this.count);
    this.summary = element("span", "status");
    head.append(this.toggle, this.summary);
    this.bar = new Bar();
    this.stats = new Stats();
    this.members = element("ul", "task-list members");
    this.members.hidden = true;
    this.node.append(head, this.bar.node, this.stats.node, this.members);
    this.expanded = false;
    this.tasks = [];
  }

  setExpanded(expanded) {
    this.expanded = expanded;
    this.members.hidden = !expanded;
    this.toggle.setAttribute("aria-expanded", String(expanded));
  }

  update(tasks, now) {
    this.tasks = tasks;
    setText(this.count, tasks.length + " tasks");
    const byStatus = new Map();
    for (const task of tasks) byStatus.set(task.status, (byStatus.get(task.status) || 0) + 1);
    const summary = [...byStatus.entries()].map(([status, count]) => count + " " + status);
    setText(this.summary, summary.join(", "));
    // The group takes its members' colour when they all share one status.
    const status = byStatus.size === 1 ? tasks[0].status : "";
    if (this.node.dataset.status !== status) this.node.dataset.status = status;
    const unit = sharedUnit(tasks);
    const known = tasks.every((task) => typeof task.total === "number");
    const n = tasks.reduce((sum, task) => sum + (task.n || 0), 0);
    const total = known ? tasks.reduce((sum, task) => sum + task.total, 0) : null;
    let fraction = null;
    if (known) fraction = total > 0 ? Math.min(1, n / total) : 1;
    const amount = unit === undefined ? "" : formatProgress(n, total, unit);
    const percent = fraction === null ? "" : formatPercent(fraction);
    this.bar.set(fraction, this.name.textContent + " (" + tasks.length + " tasks)",
      [percent, amount].filter(Boolean).join(", ") || tasks.length + " tasks");
    setText(this.stats.amount, amount);
    setText(this.stats.percent, percent);
    const running = tasks.filter(isRunning);
    const rate = running.reduce((sum, task) => sum + (task.rate || 0), 0);
    const rateUnit = unit === undefined ? (tasks.some((t) => isByteUnit(t.unit)) ? null : "it") : unit;
    setText(this.stats.rate, running.length && rate > 0 && unit !== undefined ? formatRate(rate, rateUnit) : "");
    this.tick(now);
  }

  tick(now) {
    const tasks = this.tasks;
    if (!tasks.length) return;
    const remaining = tasks.map((task) => remainingSeconds(task, now)).filter((value) => value !== null);
    setText(this.stats.eta, remaining.length ? "ETA " + formatDuration(Math.max(...remaining)) : "");
    const started = Math.min(...tasks.map((task) => task.created_at));
    const running = tasks.some(isRunning);
    const end = running ? now : Math.max(...tasks.map((task) => task.done_at || task.stale_at || task.updated_at));
    setText(this.stats.elapsed, labelled("elapsed ", formatDuration(end - started)));
    const latest = Math.max(...tasks.map((task) => task.updated_at));
    setText(this.stats.age, labelled("updated ", formatAge(Math.max(0, now - latest))));
  }
}
