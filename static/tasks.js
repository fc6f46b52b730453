// The dashboard's copy of the daemon's tasks: buckets, groups, filters, clock skew.

import { CLOSE, ERROR, RECOVERED, STALE, START, UPDATE } from "./contract.js";

/** The sections and the statuses each shows, in the order the status filter lists them. */
const BUCKET_STATUSES = {
  active: [START, UPDATE],
  attention: [RECOVERED, STALE, ERROR],
  completed: [CLOSE],
};

export const BUCKETS = Object.keys(BUCKET_STATUSES);
export const STATUSES = BUCKETS.flatMap((bucket) => BUCKET_STATUSES[bucket]);

const BUCKET_OF_STATUS = Object.fromEntries(
  BUCKETS.flatMap((bucket) => BUCKET_STATUSES[bucket].map((status) => [status, bucket])));

/** Which section a task belongs to: active, attention (stale/error/recovered) or completed. */
export function bucketOf(task) {
  return BUCKET_OF_STATUS[task.status] || "active";
}

/** The group a task folds into: `meta.group`, else its id's prefix before ":", else null. */
export function groupOf(task) {
  const meta = task.meta;
  if (meta && typeof meta === "object" && (typeof meta.group === "string" || typeof meta.group === "number")) {
    const name = String(meta.group).trim();
    if (name) return name;
  }
  const colon = task.task_id.indexOf(":");
  return colon > 0 ? task.task_id.slice(0, colon) : null;
}

/** Completed fraction 0..1, or null when the total is unknown. */
export function fractionOf(task) {
  if (typeof task.total !== "number" || !Number.isFinite(task.total)) return null;
  if (task.total <= 0) return task.status === CLOSE ? 1 : 0;
  return Math.max(0, Math.min(1, (task.n || 0) / task.total));
}

/** The latest server time a task carries (its last update, stale or done moment). */
export function lastChangeOf(task) {
  return Math.max(task.updated_at || 0, task.stale_at || 0, task.done_at || 0);
}

/** Filters as kept in the URL hash: search text, shown statuses, sort order. */
export class Filters {
  constructor(query = "", statuses = STATUSES, sort = "started") {
    this.query = query;
    this.statuses = new Set(statuses);
    this.sort = sort;
  }

  static SORTS = ["started", "updated", "progress"];

  static fromHash(hash) {
    const params = new URLSearchParams(hash.replace(/^#/, ""));
    const listed = params.has("status")
      ? params.get("status").split(",").filter((s) => STATUSES.includes(s))
      : STATUSES;
    const sort = Filters.SORTS.includes(params.get("sort")) ? params.get("sort") : "started";
    return new Filters(params.get("q") || "", listed, sort);
  }

  toHash() {
    const params = new URLSearchParams();
    if (this.query) params.set("q", this.query);
    if (this.statuses.size !== STATUSES.length) {
      params.set("status", STATUSES.filter((s) => this.statuses.has(s)).join(","));
    }
    if (this.sort !== "started") params.set("sort", this.sort);
    const text = params.toString();
    return text ? "#" + text : "";
  }

  matches(task) {
    if (!this.statuses.has(task.status)) return false;
    if (!this.query) return true;
    const needle = this.query.toLowerCase();
    return (
      task.task_id.toLowerCase().includes(needle) ||
      (typeof task.desc === "string" && task.desc.toLowerCase().includes(needle)) ||
      (groupOf(task) || "").toLowerCase().includes(needle)
    );
  }
}

/**
 * Tasks by id, plus what changed since the view last looked (`takeChanges`).
 * Also estimates how far the browser clock runs ahead of the daemon's, from the
 * freshest timestamps in deltas, so "updated N s ago" is right on skewed hosts.
 */
export class TaskState {
  constructor() {
    this.tasks = new Map();
    this.changed = new Set();
    this.removed = new Set();
    this.structureChanged = false;
    this.clockOffset = null;
  }

  replaceAll(tasks) {
    for (const id of this.tasks.keys()) {
      if (!Object.prototype.hasOwnProperty.call(tasks, id)) this.remove(id);
    }
    for (const id of Object.keys(tasks)) this.upsert(tasks[id]);
  }

  applyDelta(tasks, removed, receivedAt) {
    let freshest = 0;
    for (const id of Object.keys(tasks)) {
      this.upsert(tasks[id]);
      freshest = Math.max(freshest, lastChangeOf(tasks[id]));
    }
    for (const id of removed) this.remove(id);
    if (freshest > 0) this.observeServerTime(freshest, receivedAt);
  }

  clear() {
    this.replaceAll({});
  }

  upsert(task) {
    const previous = this.tasks.get(task.task_id);
    this.tasks.set(task.task_id, task);
    this.changed.add(task.task_id);
    this.removed.delete(task.task_id);
    // The section follows from the status; the group from the id, the same here, and from meta,
    // looked into only when it is not the same object (mostly both null).
    if (!previous || previous.status !== task.status
        || (previous.meta !== task.meta && groupOf(previous) !== groupOf(task))) {
      this.structureChanged = true;
    }
  }

  remove(id) {
    if (this.tasks.delete(id)) {
      this.changed.delete(id);
      this.removed.add(id);
      this.structureChanged = true;
    }
  }

  /** Server time `serverTime` was at most as late as `receivedAt` (browser ms). */
  observeServerTime(serverTime, receivedAt) {
    const offset = receivedAt / 1000 - serverTime;
    if (this.clockOffset === null || offset < this.clockOffset) this.clockOffset = offset;
  }

  /** The daemon's present time in epoch seconds, as best known. */
  serverNow() {
    return Date.now() / 1000 - (this.clockOffset || 0);
  }

  /** What changed since the last call: {changed, removed, structureChanged}. */
  takeChanges() {
    const changes = {
      changed: this.changed,
      removed: this.removed,
      structureChanged: this.structureChanged,
    };
    this.changed = new Set();
    this.removed = new Set();
    this.structureChanged = false;
    return changes;
  }
}
