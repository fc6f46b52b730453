// DOM for one task bar and for one group of bars. Built once (a task's head and figures at its
// first write), then only text and a transform change.

import { ACTIVE_STATUSES, STALE } from "./contract.js";
import { element, setAttribute, setText } from "./dom.js";
import { fractionOf } from "./tasks.js";
import {
  formatAge, formatDuration, formatPercent, formatProgress, formatRate, formatRunDuration,
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

let templates = null;

/**
 * The DOM task rows are cloned from, built once (cloning is cheaper than building each): the
 * card with its bar, which every row has from the start, and the head and figures it gets when
 * first written.
 */
function taskTemplates() {
  if (!templates) {
    const card = element("li", "task");
    card.append(new Bar().node);
    const head = element("div", "head");
    const title = element("div", "title");
    title.append(element("span", "desc"), element("code", "task-id"));
    const overdue = element("span", "badge overdue");
    overdue.textContent = "overdue";
    overdue.hidden = true;
    const discard = element("button", "discard write-only", { type: "button", "data-action": "discard" });
    discard.textContent = "Discard";
    head.append(title, overdue, element("span", "status"), discard);
    templates = { card, head, stats: new Stats().node };
  }
  return templates;
}

/**
 * One task: description, id, status, discard button, bar, figures, telemetry and log. Made with
 * its bar only: the rest of its DOM comes with the first write, so the many rows of a big board
 * that the browser skips off screen cost little until then.
 */
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
    this.node = taskTemplates().card.cloneNode(true);
    this.node.setAttribute("data-task-id", taskId);
    this.bar = new Bar(this.node.firstChild);
    this.stats = null;
    // Made on first use: most bars of a busy board never carry telemetry or log lines.
    this.rateSpark = null;
    this.telemetry = null;
    this.log = null;
  }

  /** The head and the figures around the bar, made at the first write. */
  build() {
    const { head, stats } = taskTemplates();
    const ownHead = head.cloneNode(true);
    this.node.insertBefore(ownHead, this.bar.node);
    this.stats = new Stats(stats.cloneNode(true));
    this.bar.node.after(this.stats.node);
    // Children by position, as taskTemplates() builds them.
    const title = ownHead.firstChild;
    this.desc = title.firstChild;
    this.id = this.desc.nextSibling;
    this.overdue = title.nextSibling;
    this.status = this.overdue.nextSibling;
    this.discard = this.status.nextSibling;
    this.discard.setAttribute("aria-label", "Discard task " + this.taskId);
    this.id.textContent = this.taskId;
  }

  /** Draw the sparklines from `series` (rate, then each metric). */
  drawSparks(series, now) {
    if (!this.stats) return;
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
    if (!this.stats) this.build();
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

/**
 * What a group's line says of its members, in one pass over them: counts by status (in the
 * order they first appear), the unit they share (undefined when they differ), sums, and times.
 */
function summarise(tasks) {
  const byStatus = new Map();
  let unit = tasks[0].unit || null;
  let known = true;
  let n = 0;
  let total = 0;
  let running = 0;
  let rate = 0;
  let started = Infinity;
  let latest = -Infinity;
  let ended = -Infinity;
  // Members mostly share a status: counted by runs of one status, not one look-up each.
  let status = tasks[0].status;
  let run = 0;
  let runRunning = isRunning(tasks[0]);
  for (const task of tasks) {
    if (task.status !== status) {
      byStatus.set(status, (byStatus.get(status) || 0) + run);
      status = task.status;
      run = 0;
      runRunning = isRunning(task);
    }
    run += 1;
    if (unit !== undefined && (task.unit || null) !== unit) unit = undefined;
    n += task.n || 0;
    if (typeof task.total === "number") total += task.total;
    else known = false;
    if (runRunning) {
      running += 1;
      rate += task.rate || 0;
    }
    started = Math.min(started, task.created_at);
    latest = Math.max(latest, task.updated_at);
    ended = Math.max(ended, task.done_at || task.stale_at || task.updated_at);
  }
  byStatus.set(status, (byStatus.get(status) || 0) + run);
  return { byStatus, unit, known, n, total: known ? total : null, running, rate, started, latest, ended };
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
    this.label = name;
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
    this.sums = null;
    /** The board's clock when the figures were last written; -1 never. */
    this.clock = -1;
  }

  setExpanded(expanded) {
    this.expanded = expanded;
    this.members.hidden = !expanded;
    this.toggle.setAttribute("aria-expanded", String(expanded));
  }

  update(tasks, now) {
    this.tasks = tasks;
    const sums = summarise(tasks);
    this.sums = sums;
    setText(this.count, tasks.length + " tasks");
    const summary = [...sums.byStatus.entries()].map(([status, count]) => count + " " + status);
    setText(this.summary, summary.join(", "));
    // The group takes its members' colour when they all share one status.
    const status = sums.byStatus.size === 1 ? tasks[0].status : "";
    if (this.node.dataset.status !== status) this.node.dataset.status = status;
    const { unit, n, total } = sums;
    let fraction = null;
    if (sums.known) fraction = total > 0 ? Math.min(1, n / total) : 1;
    const amount = unit === undefined ? "" : formatProgress(n, total, unit);
    const percent = fraction === null ? "" : formatPercent(fraction);
    this.bar.set(fraction, this.label + " (" + tasks.length + " tasks)",
      [percent, amount].filter(Boolean).join(", ") || tasks.length + " tasks");
    setText(this.stats.amount, amount);
    setText(this.stats.percent, percent);
    const rated = sums.running && sums.rate > 0 && unit !== undefined;
    setText(this.stats.rate, rated ? formatRate(sums.rate, unit) : "");
    this.tick(now);
  }

  tick(now) {
    const tasks = this.tasks;
    if (!tasks.length) return;
    let remaining = null;
    for (const task of tasks) {
      const left = remainingSeconds(task, now);
      if (left !== null) remaining = remaining === null ? left : Math.max(remaining, left);
    }
    setText(this.stats.eta, remaining === null ? "" : "ETA " + formatDuration(remaining));
    const { started, latest } = this.sums;
    const end = this.sums.running ? now : this.sums.ended;
    setText(this.stats.elapsed, labelled("elapsed ", formatDuration(end - started)));
    setText(this.stats.age, labelled("updated ", formatAge(Math.max(0, now - latest))));
  }
}
