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
/** Bars written between two looks at the clock against that budget. */
const DEADLINE_STRIDE = 32;
/**
 * The first bars of the board are written in every pass whatever the budget: on a page just
 * opened they are the ones on screen, before the browser has said which blocks are.
 */
const FIRST_BARS = 32;

const byCreated = (a, b) => a.created - b.created || compareIds(a.key, b.key);
const byUpdated = (a, b) => b.changed - a.changed || compareIds(a.key, b.key);
const byProgress = (a, b) => b.progress - a.progress || compareIds(a.key, b.key);
const SORTERS = { started: byCreated, updated: byUpdated, progress: byProgress };

const collator = new Intl.Collator(undefined, { numeric: true });
function compareIds(a, b) {
  return collator.compare(a, b);
}

/** An entry of a section for one task alone, with its sort keys. */
function taskEntry(task) {
  const progress = fractionOf(task);
  return {
    key: task.task_id,
    isGroup: false,
    created: task.created_at,
    changed: lastChangeOf(task),
    progress: progress === null ? -1 : progress,
  };
}

/** An entry of a section for the tasks of group `name`, with sort keys; one task is an entry alone. */
function groupEntry(name, tasks) {
  if (tasks.length === 1) return taskEntry(tasks[0]);
  const progress = tasks.map(fractionOf);
  return {
    key: name,
    tasks,
    isGroup: true,
    created: Math.min(...tasks.map((task) => task.created_at)),
    changed: Math.max(...tasks.map(lastChangeOf)),
    progress: progress.includes(null) ? -1 : progress.reduce((a, b) => a + b, 0) / progress.length,
  };
}

/** A group's card as the last layout placed it: the tasks it should show, and whether to look. */
class PlacedGroup {
  constructor(group, tasks) {
    this.group = group;
    this.tasks = tasks;
    this.stale = true;
  }
}

export class Board {
  /** `sections`: {active, attention, completed} -> {section, list, count, more} elements. */
  constructor(state, series, sections, onRendered) {
    this.state = state;
    this.series = series;
    this.series.onFetched = () => this.schedule();
    this.onScreen = new Set();
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
    /** The bars of the last layout (TaskRow, PlacedGroup), in the order of the page. */
    this.placed = [];
    /** Group key -> PlacedGroup, of the last layout. */
    this.placedGroups = new Map();
    /** Task id -> {placed, index}: where a task is among the members of a placed group. */
    this.memberOf = new Map();
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
    const laidOut = changes.structureChanged || this.layoutNeeded
      || (this.reorderWanted && sinceLayout >= REORDER_INTERVAL_MS);
    if (laidOut) {
      this.layout();
    } else if (this.reorderWanted && this.reorderTimer === null) {
      this.reorderTimer = setTimeout(() => {
        this.reorderTimer = null;
        this.schedule();
      }, REORDER_INTERVAL_MS - sinceLayout);
    }
    const now = this.state.serverNow();
    if (this.tickNeeded) this.clock += 1;
    this.tickNeeded = false;
    if (!laidOut) this.touchGroups(changes.changed);
    for (const bar of this.barsOnScreen()) this.refresh(bar, now);
    this.behind = !this.refreshPlaced(now, this.renderStartedAt + ROWS_BUDGET_MS);
    if (this.behind) this.schedule();
    this.drawSparks();
    this.onRendered(this.totals, !this.behind);
  }

  /** Bring every placed bar up to date in order until `deadline`; false when some are left. */
  refreshPlaced(now, deadline) {
    const bars = this.placed;
    for (let index = 0; index < bars.length; index++) {
      if (index >= FIRST_BARS && index % DEADLINE_STRIDE === 0 && performance.now() > deadline) return false;
      this.refresh(bars[index], now);
    }
    return true;
  }

  /** The groups with a member among the tasks `ids` are to be written again, with those tasks. */
  touchGroups(ids) {
    for (const id of ids) {
      const member = this.memberOf.get(id);
      if (!member) continue;
      const placed = member.placed;
      // The card keeps the array it was last given, to tell what changed since.
      if (placed.tasks === placed.group.tasks) placed.tasks = placed.tasks.slice();
      placed.tasks[member.index] = this.state.tasks.get(id);
      placed.stale = true;
    }
  }

  refresh(bar, now) {
    if (bar instanceof PlacedGroup) this.refreshGroup(bar, now);
    else this.refreshRow(bar, now);
  }

  /** Write `row` again if its task changed, or its clock figures if a second passed since. */
  refreshRow(row, now) {
    const task = this.state.tasks.get(row.taskId);
    if (task && task !== row.task) row.update(task, now);
    else if (row.clock !== this.clock) row.tick(now);
    else return;
    row.clock = this.clock;
  }

  /** Write a group's card again if its members changed, or its clock figures if a second passed. */
  refreshGroup(placed, now) {
    const { group, tasks } = placed;
    const changed = placed.stale
      && (tasks.length !== group.tasks.length || tasks.some((task, i) => task !== group.tasks[i]));
    placed.stale = false;
    if (changed) group.update(tasks, now);
    else if (group.clock !== this.clock) group.tick(now);
    else return;
    group.clock = this.clock;
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

  /** The bars in blocks near the screen (a folded group's blocks are not). */
  *barsOnScreen() {
    for (const chunk of this.onScreen) {
      if (!chunk.isConnected) continue;
      for (let node = chunk.firstElementChild; node; node = node.nextElementSibling) {
        const bar = this.barOf(node);
        if (bar) yield bar;
      }
    }
  }

  /**
   * The TaskRow or PlacedGroup list item `node` shows, found by the ids it carries: only bars on
   * screen are looked up, and a map by node would cost every bar made.
   */
  barOf(node) {
    const taskId = node.getAttribute("data-task-id");
    if (taskId !== null) return this.rows.get(taskId);
    const groupKey = node.getAttribute("data-group-key");
    return groupKey === null ? undefined : this.placedGroups.get(groupKey);
  }

  /** The task rows in blocks near the screen. */
  *visibleRows() {
    for (const bar of this.barsOnScreen()) {
      if (bar instanceof TaskRow) yield bar;
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

  /** The entries that pass the filters, by section, in the order their first task comes. */
  collect(totals) {
    const found = {};
    for (const bucket of BUCKETS) found[bucket] = { entries: [], groups: new Map() };
    for (const task of this.state.tasks.values()) {
      if (!this.filters.matches(task)) continue;
      const bucket = bucketOf(task);
      totals[bucket] += 1;
      totals.shown += 1;
      const name = groupOf(task);
      const { entries, groups } = found[bucket];
      if (name === null) {
        entries.push(taskEntry(task));
        continue;
      }
      const members = groups.get(name);
      if (members) {
        members.push(task);
      } else {
        groups.set(name, [task]);
        entries.push(name);
      }
    }
    const sections = {};
    for (const bucket of BUCKETS) {
      const { entries, groups } = found[bucket];
      sections[bucket] = entries.map((entry) =>
        typeof entry === "string" ? groupEntry(entry, groups.get(entry)) : entry);
    }
    return sections;
  }

  layout() {
    this.layoutNeeded = false;
    this.reorderWanted = false;
    this.lastLayout = performance.now();
    const totals = { active: 0, attention: 0, completed: 0, all: this.state.tasks.size, shown: 0 };
    const sections = this.collect(totals);
    this.totals = totals;
    this.placed = [];
    this.placedGroups = new Map();
    this.memberOf = new Map();
    for (const bucket of BUCKETS) {
      const entries = sections[bucket];
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
      const nodes = shown.map((entry) => this.placeEntry(bucket, entry));
      this.listOf(section.list).place(nodes);
      section.count.textContent = String(totals[bucket]);
      section.section.hidden = entries.length === 0;
    }
    for (const key of this.groups.keys()) {
      if (!this.placedGroups.has(key)) this.groups.delete(key);
    }
  }

  placeEntry(bucket, entry) {
    if (!entry.isGroup) return this.placeRow(entry.key);
    const key = bucket + ":" + entry.key;
    let group = this.groups.get(key);
    if (!group) {
      group = new GroupRow(key, entry.key);
      this.groups.set(key, group);
    }
    group.setExpanded(this.expanded.has(key));
    const members = entry.tasks.slice().sort((a, b) => compareIds(a.task_id, b.task_id));
    const placed = new PlacedGroup(group, members);
    this.placed.push(placed);
    this.placedGroups.set(key, placed);
    members.forEach((task, index) => this.memberOf.set(task.task_id, { placed, index }));
    this.listOf(group.members).place(group.expanded ? members.map((task) => this.placeRow(task.task_id)) : []);
    return group.node;
  }

  placeRow(taskId) {
    let row = this.rows.get(taskId);
    if (!row) {
      row = new TaskRow(taskId);
      this.rows.set(taskId, row);
    }
    this.placed.push(row);
    return row.node;
  }
}
