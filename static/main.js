// Wires the dashboard together: address bar, filters, live connection, board, actions.

import { clearTasks, discardTask, fetchAccess } from "./api.js";
import { Board } from "./board.js";
import { connection } from "./boot.js";
import { neighbourOf } from "./chunks.js";
import { BrowserNotifier } from "./notify.js";
import { CLOSE, ERROR, STALE, TOKEN_QUERY_PARAM } from "./contract.js";
import { HistoryView } from "./history.js";
import { element } from "./dom.js";
import { SeriesBook } from "./series.js";
import { Filters, STATUSES, TaskState } from "./tasks.js";

const byId = (id) => document.getElementById(id);

/** The daemon turned `?token=` into an HttpOnly cookie; keep the token out of the address bar. */
function dropTokenFromAddress() {
  const url = new URL(location.href);
  if (!url.searchParams.has(TOKEN_QUERY_PARAM)) return;
  url.searchParams.delete(TOKEN_QUERY_PARAM);
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

const HISTORY_VIEW = "history";

/** What the hash says besides the filters: which view, and in History the chosen job. */
function viewOf(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  return { history: params.has(HISTORY_VIEW), job: params.get("job") || null };
}

function hashOf(view, filters) {
  const parts = view.history ? [HISTORY_VIEW] : [];
  const text = filters.toHash().replace(/^#/, "");
  if (text) parts.push(text);
  if (view.history && view.job) parts.push(new URLSearchParams({ job: view.job }).toString());
  return parts.length ? "#" + parts.join("&") : "";
}

/** One checkbox per status in the status filter, in the order the sections show them. */
function statusBoxes(fieldset) {
  return STATUSES.map((status) => {
    const box = element("input", null, { type: "checkbox", name: "status", value: status });
    const label = element("label");
    label.append(box, " " + status);
    fieldset.appendChild(label);
    return box;
  });
}

function sectionsOf(names) {
  const sections = {};
  for (const name of names) {
    const section = byId("bucket-" + name);
    sections[name] = {
      section,
      list: section.querySelector(".task-list"),
      count: section.querySelector(".count"),
      more: section.querySelector(".more"),
    };
  }
  return sections;
}

/**
 * Timings of the last snapshot and delta: from the message's arrival to the DOM written
 * (`renderedMs`) and to the next frame (`paintedMs`, at `paintedAt` on the page's clock);
 * `scriptMs` is the render pass alone, `handledMs` the messages' parsing and handling.
 * `caughtUpAt`: the last render pass that left no bar off screen behind.
 */
const timings = { snapshot: null, delta: null, pending: null, caughtUpAt: 0 };
window.progressistaTimings = timings;

function startTiming(kind, count, arrivedAt) {
  if (!timings.pending) timings.pending = { kind, tasks: count, arrivedAt, handledMs: 0 };
  else timings.pending.tasks += count;
}

function handledTiming(arrivedAt) {
  if (timings.pending) timings.pending.handledMs += performance.now() - arrivedAt;
}

function finishTiming(renderStartedAt, caughtUp) {
  if (caughtUp) timings.caughtUpAt = performance.now();
  const pending = timings.pending;
  if (!pending) return;
  timings.pending = null;
  const rendered = performance.now();
  requestAnimationFrame(() => setTimeout(() => {
    const paintedAt = performance.now();
    timings[pending.kind] = {
      tasks: pending.tasks,
      scriptMs: rendered - renderStartedAt,
      handledMs: pending.handledMs,
      renderedMs: rendered - pending.arrivedAt,
      paintedMs: paintedAt - pending.arrivedAt,
      arrivedAt: pending.arrivedAt,
      paintedAt,
    };
  }));
}

class Dashboard {
  constructor() {
    this.state = new TaskState();
    this.series = new SeriesBook();
    this.filters = Filters.fromHash(location.hash);
    this.view = viewOf(location.hash);
    this.historyView = new HistoryView((job) => {
      this.view = { history: true, job };
      this.writeHash();
    });
    this.board = new Board(this.state, this.series, sectionsOf(["active", "attention", "completed"]),
      (totals, caughtUp) => this.rendered(totals, caughtUp));
    this.notifier = new BrowserNotifier(byId("notify-toggle"), byId("notify-note"));
    this.connectionState = "connecting";
    this.connection = connection;
  }

  start() {
    this.bindControls();
    this.board.setFilters(this.filters);
    this.showView();
    this.notifier.start();
    this.connection.attach({
      onSnapshot: (tasks) => this.snapshot(tasks),
      onDelta: (tasks, removed, receivedAt) => this.delta(tasks, removed, receivedAt),
      onState: (state, delay) => this.showConnection(state, delay),
    });
    setInterval(() => this.board.tick(), 1000);
  }

  snapshot(tasks) {
    startTiming("snapshot", Object.keys(tasks).length, this.connection.arrivedAt);
    this.state.replaceAll(tasks);
    for (const task of Object.values(tasks)) this.series.record(task);
    this.board.schedule();
    handledTiming(this.connection.arrivedAt);
  }

  delta(tasks, removed, receivedAt) {
    startTiming("delta", Object.keys(tasks).length + removed.length, this.connection.arrivedAt);
    this.notifier.observe(tasks, this.state.tasks, this.filters);
    this.state.applyDelta(tasks, removed, receivedAt);
    for (const task of Object.values(tasks)) this.series.record(task);
    this.board.schedule();
    handledTiming(this.connection.arrivedAt);
  }

  rendered(totals, caughtUp) {
    finishTiming(this.board.renderStartedAt, caughtUp);
    const connected = this.connectionState === "connected";
    const empty = byId("empty");
    empty.hidden = !connected || totals.shown > 0;
    empty.textContent = totals.all === 0
      ? "No tasks yet. Progress sent to this daemon shows up here."
      : "No task matches the search or the status filters.";
    const parts = [];
    if (totals.active) parts.push(totals.active + " active");
    if (totals.attention) parts.push(totals.attention + " need attention");
    const title = "progressista" + (parts.length ? " (" + parts.join(", ") + ")" : "");
    if (document.title !== title) document.title = title;
  }

  showConnection(state, delay) {
    this.connectionState = state;
    const labels = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: delay ? `Reconnecting in ${Math.ceil(delay / 1000)} s…` : "Reconnecting…",
      unauthorized: "Unauthorized",
    };
    byId("connection").dataset.state = state;
    byId("connection-text").textContent = labels[state];
    byId("board").classList.toggle("offline", state !== "connected");
    const unauthorized = state === "unauthorized";
    byId("unauthorized").hidden = !unauthorized;
    if (unauthorized) {
      this.state.clear();
      this.board.relayout();
    }
    if (state === "connected") this.refreshAccess();
    else this.board.relayout();
  }

  async refreshAccess() {
    const auth = await fetchAccess();
    if (!auth) return;
    const canWrite = !auth.required || auth.access === "write";
    document.body.classList.toggle("can-write", canWrite);
  }

  bindControls() {
    const search = byId("search");
    const sort = byId("sort");
    const boxes = statusBoxes(byId("statuses"));
    const show = () => {
      search.value = this.filters.query;
      sort.value = this.filters.sort;
      for (const box of boxes) box.checked = this.filters.statuses.has(box.value);
    };
    const changed = () => {
      this.filters = new Filters(search.value.trim(),
        boxes.filter((box) => box.checked).map((box) => box.value), sort.value);
      this.writeHash();
      this.board.setFilters(this.filters);
      if (this.view.history) this.historyView.filter(this.filters.query);
    };
    show();
    search.addEventListener("input", changed);
    sort.addEventListener("change", changed);
    for (const box of boxes) box.addEventListener("change", changed);
    window.addEventListener("hashchange", () => {
      this.filters = Filters.fromHash(location.hash);
      this.view = viewOf(location.hash);
      show();
      this.board.setFilters(this.filters);
      this.showView();
    });
    byId("board").addEventListener("click", (event) => this.clicked(event));
    byId("clear-completed").addEventListener("click", (event) =>
      this.act(event.currentTarget, () => clearTasks([CLOSE])));
    byId("clear-errors").addEventListener("click", (event) =>
      this.act(event.currentTarget, () => clearTasks([ERROR])));
    byId("clear-stale").addEventListener("click", (event) =>
      this.act(event.currentTarget, () => clearTasks([STALE])));
  }

  writeHash() {
    const base = location.pathname + location.search;
    history.replaceState(history.state, "", base + hashOf(this.view, this.filters));
    this.linkViews();
  }

  /** The view tabs keep the search when switching. */
  linkViews() {
    byId("tab-board").href = hashOf({ history: false }, this.filters) || "#";
    byId("tab-history").href = hashOf({ history: true, job: this.view.job }, this.filters);
  }

  showView() {
    const history = this.view.history;
    document.body.classList.toggle("view-history", history);
    byId("board").hidden = history;
    byId("history").hidden = !history;
    for (const [id, current] of [["tab-board", !history], ["tab-history", history]]) {
      if (current) byId(id).setAttribute("aria-current", "page");
      else byId(id).removeAttribute("aria-current");
    }
    this.linkViews();
    if (history) this.historyView.show(this.filters.query, this.view.job);
  }

  clicked(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    if (action === "discard") {
      const row = button.closest(".task");
      const taskId = row.dataset.taskId;
      // Keyboard users keep their place: focus moves to the neighbouring bar's button.
      const neighbour = neighbourOf(row);
      this.act(button, () => discardTask(taskId), () => {
        const target = neighbour && neighbour.isConnected && neighbour.querySelector("button");
        const focus = document.activeElement;
        if (target && (focus === button || focus === document.body)) target.focus();
      });
    } else if (action === "toggle-group") {
      this.board.toggleGroup(button.closest(".group").dataset.groupKey);
    } else if (action === "show-older") {
      this.board.toggleCompleted();
    }
  }

  /** Run an API call for `button`; the result arrives through the socket like any change. */
  act(button, call, done) {
    const notice = byId("notice");
    button.disabled = true;
    call()
      .then(() => {
        notice.hidden = true;
        if (done) done();
      })
      .catch((error) => {
        notice.textContent = error.message;
        notice.hidden = false;
      })
      .finally(() => { button.disabled = false; });
  }
}

dropTokenFromAddress();
new Dashboard().start();
