// DOM for one task bar and for one group of bars. Built once, then only text and a transform change.

import { ACTIVE_STATUSES, STALE } from "./contract.js";
import { element, setAttribute, setText } from "./dom.js";
import { fractionOf } from "./tasks.js";
import {
  formatAge, formatDuration, formatPercent, formatProgress, formatRate, formatRunDuration, isByteUnit,
} from "./format.js";
import { Sparkline } from "./sparkline.js";
import { LogView, TelemetryView } from "./telemetry.js";


/** A progress bar with role=progressbar; `fraction` null draws the indeterminate style. */
class Bar {
  /** A new bar, or the one `node` (a clone of a bar's DOM) holds. */
  constructor(node) {
    this.node = node || element("div", "bar", { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" });
    if (node) this.fill = node.firstChild;
    else this.fill = this.node.appendChild(element("div", "bar-fill"));
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
  static NAMES = ["amount", "percent", "rate", "eta", "expected", "elapsed", "age"];

  /** New figures, or those `node` (a clone of the figures' DOM) holds. */
  constructor(node) {
    this.node = node || element("div", "stats");
    if (!node) for (const name of Stats.NAMES) this.node.appendChild(element("span", "stat stat-" + name));
    this.amount = this.node.firstChild;
    this.percent = this.amount.nextSibling;
    this.rate = this.percent.nextSibling;
    this.eta = this.rate.nextSibling;
    this.expected = this.eta.nextSibling;
    this.elapsed = this.expected.nextSibling;
    this.age = this.elapsed.nextSibling;
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

/** Without a total, what the job's usual duration leaves of this run: an estimate. */
function estimatedSeconds(task, now) {
  if (typeof task.expected_duration !== "number" || !isRunning(task) || typeof task.total === "number") {
    return null;
  }
  return Math.max(0, task.expected_duration - Math.max(0, now - task.created_at));
}

function etaText(task, now) {
  const remaining = remainingSeconds(task, now);
  if (remaining !== null) return "ETA " + formatDuration(remaining);
  const estimate = estimatedSeconds(task, now);
  return estimate === null ? "" : "ETA ~" + formatDuration(estimate) + " (estimate)";
}

function expectedText(task) {
  const expected = task.expected_duration;
  return typeof expected === "number" && isRunning(task) ? "usually " + formatRunDuration(expected) : "";
}

let taskTemplate = null;

/** The DOM every task row starts from, built once: cloning it is cheaper than building each. */
function taskDom() {
  if (!taskTemplate) {
    taskTemplate = element("li", "task");
    const head = element("div", "head");
    const title = element("div", "title");
    title.append(element("span", "desc"), element("code", "task-id"));
    const overdue = element("span", "badge overdue");
    overdue.textContent = "overdue";
    overdue.hidden = true;
    const discard = element("button", "discard write-only", { type: "button", "data-action": "discard" });
    discard.textContent = "Discard";
    head.append(title, overdue, element("span", "status"), discard);
    taskTemplate.append(head, new Bar().node, new Stats().node);
  }
  return taskTemplate.cloneNode(true);
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
    /** The board's clock (a count of its ticks) when the figures were last written; -1 never. */
    this.clock = -1;
    this.node = taskDom();
    this.node.dataset.taskId = taskId;
    // Children by position, as taskDom() builds them.
    const head = this.node.firstChild;
    const title = head.firstChild;
    this.desc = title.firstChild;
    this.id = this.desc.nextSibling;
    this.overdue = title.nextSibling;
    this.status = this.overdue.nextSibling;
    this.discard = this.status.nextSibling;
    this.discard.setAttribute("aria-label", "Discard task " + taskId);
    this.id.textContent = taskId;
    this.bar = new Bar(head.nextSibling);
    this.stats = new Stats(this.bar.node.nextSibling);
    // Made on first use: most bars of a busy board never carry telemetry or log lines.
    this.rateSpark = null;
    this.telemetry = null;
    this.log = null;
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
    const idHidden = desc === task.task_id;
    if (this.id.hidden !== idHidden) this.id.hidden = idHidden;
    setText(this.status, task.status);
    if (this.node.dataset.status !== task.status) this.node.dataset.status = task.status;
    const amount = formatProgress(task.n || 0, task.total, task.unit);
    const percent = fraction === null ? "" : formatPercent(fraction);
    this.bar.set(fraction, desc, percent ? percent + ", " + amount : amount);
    setText(this.stats.amount, amount);
    setText(this.stats.percent, percent);
    setText(this.stats.rate, isRunning(task) ? formatRate(task.rate, task.unit) : "");
    setText(this.stats.expected, expectedText(task));
    const overdue = task.overdue === true && isRunning(task);
    if (this.overdue.hidden === overdue) {
      this.overdue.hidden = !overdue;
      this.node.classList.toggle("is-overdue", overdue);
    }
    this.updateTelemetry(task);
    this.tick(now);
  }

  /** Refresh the figures that move with the clock alone. */
  tick(now) {
    const task = this.task;
    if (!task) return;
    setText(this.stats.eta, etaText(task, now));
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
    this.members = element("div", "task-list members");
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
