// The series behind the sparklines: one point per update the page receives (the daemon
// samples once per broadcast, when it sends one), joined once with what the daemon stored
// before the page first showed the task (GET /tasks/{id}/series).

import { fetchSeries } from "./api.js";

/** Points a page keeps per series: more than a sparkline's width can show. */
export const SPARK_POINTS = 160;
/** Stored series fetched at the same time, so 1000 new cards do not queue 1000 requests at once. */
const FETCHES_AT_ONCE = 4;

/** Times, rates and metrics of one task; when full, every other point goes and the stride doubles. */
export class Series {
  constructor() {
    this.t = [];
    this.rate = [];
    this.metrics = new Map();
    this.stride = 1;
    this.skipped = 0;
    this.version = 0;
  }

  /** One point at server time `t`; a second point at the same time replaces the first. */
  add(t, rate, metrics) {
    const last = this.t.length - 1;
    if (last >= 0 && this.t[last] === t) {
      this.t.pop();
      this.rate.pop();
      for (const values of this.metrics.values()) values.pop();
    } else if (++this.skipped < this.stride) {
      return;
    }
    this.skipped = 0;
    if (this.t.length >= SPARK_POINTS) this.thin();
    const points = this.t.length;
    this.t.push(t);
    this.rate.push(typeof rate === "number" ? rate : null);
    const given = metrics && typeof metrics === "object" ? metrics : null;
    if (this.metrics.size) {
      for (const key of [...this.metrics.keys()]) {
        // As the daemon's: a key gone loses its series.
        if (!given || !(key in given)) this.metrics.delete(key);
      }
    }
    if (given) this.addMetrics(given, points);
    this.version += 1;
  }

  /** A value of each metric in `given`; a metric first seen now gets a gap at the `points` before. */
  addMetrics(given, points) {
    for (const [key, value] of Object.entries(given)) {
      let values = this.metrics.get(key);
      if (!values) {
        values = new Array(points).fill(null);
        this.metrics.set(key, values);
      }
      values.push(typeof value === "number" ? value : null);
    }
  }

  thin() {
    const keep = (values) => values.filter((_, index) => index % 2 === 0);
    this.t = keep(this.t);
    this.rate = keep(this.rate);
    for (const [key, values] of this.metrics) this.metrics.set(key, keep(values));
    this.stride *= 2;
  }
}

/** Every task's series, and the one fetch of its stored series when a card first shows it. */
export class SeriesBook {
  constructor(fetcher = fetchSeries) {
    this.series = new Map();
    this.fetcher = fetcher;
    this.requested = new Set();
    this.queue = [];
    this.running = 0;
    this.onFetched = () => {};
  }

  get(taskId) {
    return this.series.get(taskId) || null;
  }

  record(task) {
    let series = this.series.get(task.task_id);
    if (!series) {
      series = new Series();
      this.series.set(task.task_id, series);
    }
    series.add(task.updated_at, task.rate, task.metrics);
  }

  remove(taskId) {
    this.series.delete(taskId);
    this.requested.delete(taskId);
  }

  /** Ask once for what the daemon stored of `taskId`, the first time a card shows it. */
  want(taskId) {
    if (this.requested.has(taskId)) return;
    this.requested.add(taskId);
    this.queue.push(taskId);
    this.pump();
  }

  pump() {
    while (this.running < FETCHES_AT_ONCE && this.queue.length) {
      const taskId = this.queue.shift();
      if (!this.series.has(taskId)) continue;
      this.running += 1;
      this.fetcher(taskId)
        .then((stored) => this.join(taskId, stored))
        .catch(() => {})  // a task removed meanwhile (404), or the daemon away: the page's points stay
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
  }

  /** The stored points, then those the page received since. */
  join(taskId, stored) {
    const received = this.series.get(taskId);
    if (!received || !stored || !Array.isArray(stored.t)) return;
    const joined = new Series();
    const keys = Object.keys(stored.metrics || {});
    stored.t.forEach((t, index) => {
      const metrics = {};
      for (const key of keys) metrics[key] = stored.metrics[key][index];
      joined.add(t, stored.rate[index], metrics);
    });
    const since = stored.t.length ? stored.t[stored.t.length - 1] : -Infinity;
    received.t.forEach((t, index) => {
      if (t <= since) return;
      const metrics = {};
      for (const [key, values] of received.metrics) metrics[key] = values[index];
      joined.add(t, received.rate[index], metrics);
    });
    joined.version = received.version + 1;
    this.series.set(taskId, joined);
    this.onFetched(taskId);
  }
}
