// The three sections of bars and the render loop: at most one DOM pass per animation frame,
// rows reused by task id, DOM only written (never measured) while rendering. Sparklines are
// drawn only for cards on screen, each at most once per SPARK_INTERVAL_MS.

import { BUCKETS, bucketOf, fractionOf, groupOf, lastChangeOf } from "./tasks.js";
import { GroupRow, TaskRow } from "./rows.js";

const COMPLETED_SHOWN = 10;
/** A visible card's sparklines are drawn again at most this often while its task updates. */
const SPARK_INTERVAL_MS = 1000;
/** Reordering by update time or progress happens at most this often, so bars do not jump about. */
const REORDER_INTERVAL_MS = 1000;

const byCreated = (a, b) => a.created - b.created || compareIds(a.key, b.key);
const byUpdated = (a, b) => b.changed - a.changed || compareIds(a.key, b.key);
const byProgress = (a, b) => b.progress - a.progress || compareIds(a.key, b.key);
const SORTERS = { started: byCreated, updated: byUpdated, progress: byProgress };

const collator = new Intl.Collator(undefined, { numeric: true });
function compareIds(a, b) {
  return collator.compare(a, b);
}

/** Place `nodes` as the children of `parent`, in order, moving only what is out of place. */
function reconcile(parent, nodes) {
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

/** An entry of a section: one task, or a group of tasks with sort keys. */
function entryFor(key, tasks, isGroup) {
  const progress = tasks.map(fractionOf);
  return {
    key,
    tasks,
    isGroup,
    created: Math.min(...tasks.map((task) => task.created_at)),
    changed: Math.max(...tasks.map(lastChangeOf)),
    progress: progress.includes(null) ? -1 : progress.reduce((a, b) => a + b, 0) / progress.length,
  };
}

export class Board {
  /** `sections`: {active, attention, completed} -> {section, list, count, more} elements. */
  constructor(state, series, sections, onRendered) {
    this.state = state;
    this.series = series;
    this.series.onFetched = () => this.schedule();
    this.visible = new Set();
    this.rowOfNode = new WeakMap();
    this.watcher = new IntersectionObserver((entries) => this.seen(entries));
    this.sparkTimer = null;
    this.sections = sections;
    this.onRendered = onRendered;
    this.filters = null;
    this.rows = new Map();
    this.groups = new Map();
    this.expanded = new Set();
    this.showAllCompleted = false;
    this.placedRows = [];
    this.placedGroups = [];
    this.frame = null;
    this.layoutNeeded = true;
    this.reorderWanted = false;
    this.reorderTimer = null;
    this.lastLayout = 0;
    this.tickNeeded = false;
    this.renderStartedAt = 0;
    this.totals = { active: 0, attention: 0, completed: 0, all: 0, shown: 0 };
  }

  setFilters(filters) {
    this.filters = filters;
    this.relayout();
  }

  relayout() {
    this.layoutNeeded = true;
    this.schedule();
  }

  tick() {
    this.tickNeeded = true;
    this.schedule();
  }

  toggleGroup(key) {
    if (this.expanded.has(key)) this.expanded.delete(key);
    else this.expanded.add(key);
    const group = this.groups.get(key);
    if (group) group.setExpanded(this.expanded.has(key));
    this.relayout();
  }

  toggleCompleted() {
    this.showAllCompleted = !this.showAllCompleted;
    this.relayout();
  }

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = null;
    this.renderStartedAt = performance.now();
    const changes = this.state.takeChanges();
    for (const id of changes.removed) this.forget(id);
    const sinceLayout = performance.now() - this.lastLayout;
    if (changes.changed.size && this.filters.sort !== "started") this.reorderWanted = true;
    if (changes.structureChanged || this.layoutNeeded || (this.reorderWanted && sinceLayout >= REORDER_INTERVAL_MS)) {
      this.layout();
    } else if (this.reorderWanted && this.reorderTimer === null) {
      this.reorderTimer = setTimeout(() => {
        this.reorderTimer = null;
        this.schedule();
      }, REORDER_INTERVAL_MS - sinceLayout);
    }
    const now = this.state.serverNow();
    const tick = this.tickNeeded;
    this.tickNeeded = false;
    for (const row of this.placedRows) {
      const task = this.state.tasks.get(row.taskId);
      if (task && task !== row.task) row.update(task, now);
      else if (tick) row.tick(now);
    }
    for (const { group, ids } of this.placedGroups) {
      const tasks = ids.map((id) => this.state.tasks.get(id)).filter(Boolean);
      const changed = tasks.length !== group.tasks.length || tasks.some((task, i) => task !== group.tasks[i]);
      if (changed) group.update(tasks, now);
      else if (tick) group.tick(now);
    }
    this.drawSparks();
    this.onRendered(this.totals);
  }

  /** Sparklines of the cards on screen whose series moved, each at most once per interval. */
  drawSparks() {
    const now = performance.now();
    let soonest = Infinity;
    for (const row of this.visible) {
      const series = this.series.get(row.taskId);
      if (!series || series.version === row.sparksDrawn) continue;
      const due = row.sparksDrawnAt + SPARK_INTERVAL_MS;
      if (due <= now) row.drawSparks(series, now);
      else soonest = Math.min(soonest, due);
    }
    if (soonest < Infinity && this.sparkTimer === null) {
      this.sparkTimer = setTimeout(() => {
        this.sparkTimer = null;
        this.schedule();
      }, soonest - now);
    }
  }

  /** Cards entering or leaving the screen: one entering first asks for its stored series. */
  seen(entries) {
    let entered = false;
    for (const entry of entries) {
      const row = this.rowOfNode.get(entry.target);
      if (!row) continue;
      if (entry.isIntersecting) {
        this.visible.add(row);
        this.series.want(row.taskId);
        entered = true;
      } else {
        this.visible.delete(row);
      }
    }
    if (entered) this.schedule();
  }

  forget(taskId) {
    const row = this.rows.get(taskId);
    if (row) {
      this.watcher.unobserve(row.node);
      this.visible.delete(row);
      this.rows.delete(taskId);
    }
    this.series.remove(taskId);
  }

  layout() {
    this.layoutNeeded = false;
    this.reorderWanted = false;
    this.lastLayout = performance.now();
    const grouped = { active: new Map(), attention: new Map(), completed: new Map() };
    const totals = { active: 0, attention: 0, completed: 0, all: this.state.tasks.size, shown: 0 };
    for (const task of this.state.tasks.values()) {
      if (!this.filters.matches(task)) continue;
      const bucket = bucketOf(task);
      totals[bucket] += 1;
      totals.shown += 1;
      const group = groupOf(task);
      const key = group === null ? "task\u0000" + task.task_id : "group\u0000" + group;
      const members = grouped[bucket].get(key);
      if (members) members.push(task);
      else grouped[bucket].set(key, [task]);
    }
    this.totals = totals;
    this.placedRows = [];
    this.placedGroups = [];
    const liveGroups = new Set();
    for (const bucket of BUCKETS) {
      const entries = [];
      for (const [key, tasks] of grouped[bucket]) {
        const isGroup = key.startsWith("group\u0000") && tasks.length > 1;
        entries.push(entryFor(isGroup ? key.slice(6) : tasks[0].task_id, tasks, isGroup));
      }
      entries.sort(bucket === "completed" ? byUpdated : SORTERS[this.filters.sort] || byCreated);
      const section = this.sections[bucket];
      let shown = entries;
      if (bucket === "completed") {
        const hidden = this.showAllCompleted ? 0 : Math.max(0, entries.length - COMPLETED_SHOWN);
        shown = hidden ? entries.slice(0, COMPLETED_SHOWN) : entries;
        section.more.hidden = entries.length <= COMPLETED_SHOWN;
        section.more.textContent = this.showAllCompleted
          ? "Fold older completed tasks"
          : `Show ${hidden} older completed`;
        section.more.setAttribute("aria-expanded", String(this.showAllCompleted));
      }
      const nodes = shown.map((entry) => this.placeEntry(bucket, entry, liveGroups));
      reconcile(section.list, nodes);
      section.count.textContent = String(totals[bucket]);
      section.section.hidden = entries.length === 0;
    }
    for (const key of this.groups.keys()) {
      if (!liveGroups.has(key)) this.groups.delete(key);
    }
  }

  placeEntry(bucket, entry, liveGroups) {
    if (!entry.isGroup) return this.placeRow(entry.tasks[0].task_id);
    const key = bucket + ":" + entry.key;
    liveGroups.add(key);
    let group = this.groups.get(key);
    if (!group) {
      group = new GroupRow(key, entry.key);
      this.groups.set(key, group);
    }
    group.setExpanded(this.expanded.has(key));
    const members = entry.tasks.slice().sort((a, b) => compareIds(a.task_id, b.task_id));
    this.placedGroups.push({ group, ids: members.map((task) => task.task_id) });
    reconcile(group.members, group.expanded ? members.map((task) => this.placeRow(task.task_id)) : []);
    return group.node;
  }

  placeRow(taskId) {
    let row = this.rows.get(taskId);
    if (!row) {
      row = new TaskRow(taskId);
      this.rowOfNode.set(row.node, row);
      this.rows.set(taskId, row);
      this.watcher.observe(row.node);
    }
    this.placedRows.push(row);
    return row.node;
  }
}
