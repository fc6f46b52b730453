// The three sections of bars and the render loop: at most one DOM pass per animation frame,
// rows reused by task id, DOM only written (never measured) while rendering; bars off screen
// are written within a budget per frame. Sparklines are drawn only for cards in blocks on
// screen, each at most once per SPARK_INTERVAL_MS.

import { BUCKETS, bucketOf, fractionOf, groupOf, lastChangeOf } from "./tasks.js";
import { ChunkedList } from "./chunks.js";
import { ScreenWatch } from "./onscreen.js";
import { GroupRow, TaskRow } from "./rows.js";

const COMPLETED_SHOWN = 10;
/** A visible card's sparklines are drawn again at most this often while its task updates. */
const SPARK_INTERVAL_MS = 1000;
/** Reordering by update time or progress happens at most this often, so bars do not jump about. */
const REORDER_INTERVAL_MS = 1000;
/**
 * Bars on screen are written in the frame their change arrives; the others (skipped by the
 * browser until scrolled to) in this much script time per frame, the rest in the frames after.
 */
const ROWS_BUDGET_MS = 6;
/** Rows written between two looks at the clock against that budget. */
const DEADLINE_STRIDE = 32;

const byCreated = (a, b) => a.created - b.created || compareIds(a.key, b.key);
const byUpdated = (a, b) => b.changed - a.changed || compareIds(a.key, b.key);
const byProgress = (a, b) => b.progress - a.progress || compareIds(a.key, b.key);
const SORTERS = { started: byCreated, updated: byUpdated, progress: byProgress };

const collator = new Intl.Collator(undefined, { numeric: true });
function compareIds(a, b) {
  return collator.compare(a, b);
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
    this.onScreen = new Set();
    this.rowOfNode = new WeakMap();
    this.watcher = new ScreenWatch((chunk, onScreen) => this.seen(chunk, onScreen));
    this.lists = new WeakMap();
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
    this.clock = 0;
    this.behind = false;
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
    if (tick) this.clock += 1;
    for (const row of this.visibleRows()) this.refresh(row, now);
    this.behind = !this.refreshPlaced(now, this.renderStartedAt + ROWS_BUDGET_MS);
    if (this.behind) this.schedule();
    for (const { group, ids } of this.placedGroups) {
      const tasks = ids.map((id) => this.state.tasks.get(id)).filter(Boolean);
      const changed = tasks.length !== group.tasks.length || tasks.some((task, i) => task !== group.tasks[i]);
      if (changed) group.update(tasks, now);
      else if (tick) group.tick(now);
    }
    this.drawSparks();
    this.onRendered(this.totals, !this.behind);
  }

  /** Bring every placed row up to date in order until `deadline`; false when some are left. */
  refreshPlaced(now, deadline) {
    const rows = this.placedRows;
    for (let index = 0; index < rows.length; index++) {
      if (index % DEADLINE_STRIDE === 0 && performance.now() > deadline) return false;
      this.refresh(rows[index], now);
    }
    return true;
  }

  /** Write `row` again if its task changed, or its clock figures if a second passed since. */
  refresh(row, now) {
    const task = this.state.tasks.get(row.taskId);
    if (task && task !== row.task) row.update(task, now);
    else if (row.clock !== this.clock) row.tick(now);
    else return;
    row.clock = this.clock;
  }

  /** Sparklines of the cards on screen whose series moved, each at most once per interval. */
  drawSparks() {
    const now = performance.now();
    let soonest = Infinity;
    for (const row of this.visibleRows()) {
      this.series.want(row.taskId);
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

  /** The task rows in blocks near the screen (a folded group's blocks are not). */
  *visibleRows() {
    for (const chunk of this.onScreen) {
      if (!chunk.isConnected) continue;
      for (let node = chunk.firstElementChild; node; node = node.nextElementSibling) {
        const row = this.rowOfNode.get(node);
        if (row) yield row;
      }
    }
  }

  /** A block entering or leaving the screen: its cards entering first ask for their stored series. */
  seen(chunk, onScreen) {
    if (onScreen) {
      this.onScreen.add(chunk);
      this.schedule();
    } else {
      this.onScreen.delete(chunk);
    }
  }

  /** The blocks of list element `container`. */
  listOf(container) {
    let list = this.lists.get(container);
    if (!list) {
      list = new ChunkedList(container, this.watcher);
      this.lists.set(container, list);
    }
    return list;
  }

  forget(taskId) {
    this.rows.delete(taskId);
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
      this.listOf(section.list).place(nodes);
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
    this.listOf(group.members).place(group.expanded ? members.map((task) => this.placeRow(task.task_id)) : []);
    return group.node;
  }

  placeRow(taskId) {
    let row = this.rows.get(taskId);
    if (!row) {
      row = new TaskRow(taskId);
      this.rowOfNode.set(row.node, row);
      this.rows.set(taskId, row);
    }
    this.placedRows.push(row);
    return row.node;
  }
}
