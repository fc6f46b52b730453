// The History view: jobs with their outcomes and usual duration, a chosen job's runs as a
// chart and a table, and one run's details. Read from GET /history/jobs and GET /history.

import { fetchJobs, fetchRuns } from "./api.js";
import { OUTCOMES, drawChart, legendMark } from "./chart.js";
import { ERROR, RUN_ABANDONED } from "./contract.js";
import { element } from "./dom.js";
import { formatMetric, formatProgress, formatRunDuration } from "./format.js";

const RUNS_SHOWN = 50;
/** Runs whose log tail the history keeps. */
const FAILED_RUN_STATUSES = [ERROR, RUN_ABANDONED];

const byId = (id) => document.getElementById(id);

function formatTime(seconds) {
  return typeof seconds === "number" ? new Date(seconds * 1000).toLocaleString() : "";
}

function cell(tag, content, attributes) {
  const node = element(tag, null, attributes);
  if (content instanceof Node) node.appendChild(content);
  else node.textContent = content;
  return node;
}

function pressedButton(text, data, pressed) {
  const button = element("button", "pick", { type: "button", "aria-pressed": String(pressed) });
  button.textContent = text;
  Object.assign(button.dataset, data);
  return button;
}

function outcomeLabel(status) {
  return (OUTCOMES[status] || { label: status }).label;
}

export class HistoryView {
  /** `onJobChosen(job)` keeps the address bar in step with the chosen job. */
  constructor(onJobChosen) {
    this.onJobChosen = onJobChosen;
    this.jobs = {};
    this.query = "";
    this.job = null;
    this.runs = [];
    this.runId = null;
    this.loading = null;
    byId("jobs").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-job]");
      if (button) this.choose(button.dataset.job);
    });
    byId("runs").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-run-id]");
      if (button) this.select(button.dataset.runId);
    });
    byId("run-chart").addEventListener("click", (event) => {
      const mark = event.target.closest("[data-run-id]");
      if (mark) this.select(mark.dataset.runId);
    });
    byId("history-refresh").addEventListener("click", () => this.load());
    this.legend();
  }

  legend() {
    const list = byId("chart-legend");
    for (const status of Object.keys(OUTCOMES)) {
      const item = element("li");
      item.append(legendMark(status), " " + outcomeLabel(status));
      list.appendChild(item);
    }
    const median = element("li");
    median.append(element("span", "median-key", { "aria-hidden": "true" }), " median");
    list.appendChild(median);
  }

  /** Show the view for `job` (or none) filtered by `query`, reading the daemon again. */
  show(query, job) {
    this.query = query.toLowerCase();
    const jobChanged = job !== this.job;
    this.job = job;
    if (jobChanged) this.runId = null;
    this.load();
  }

  filter(query) {
    this.query = query.toLowerCase();
    this.renderJobs();
  }

  async load() {
    const status = byId("history-status");
    const loading = Symbol("load");
    this.loading = loading;
    try {
      const jobs = await fetchJobs();
      const runs = this.job ? await fetchRuns(this.job, RUNS_SHOWN) : [];
      if (this.loading !== loading) return;
      this.jobs = jobs;
      this.runs = runs;
      status.textContent = "";
    } catch (error) {
      if (this.loading !== loading) return;
      status.textContent = "History unavailable: " + error.message;
    }
    this.renderJobs();
    this.renderRuns();
  }

  choose(job) {
    this.job = job;
    this.runId = null;
    this.onJobChosen(job);
    this.load();
  }

  select(runId) {
    this.runId = runId;
    this.renderRuns();
    byId("run-details-heading").focus();
  }

  renderJobs() {
    const names = Object.keys(this.jobs).filter((name) => name.toLowerCase().includes(this.query));
    const body = byId("jobs").tBodies[0];
    body.replaceChildren(...names.map((name) => this.jobRow(name, this.jobs[name])));
    byId("jobs").hidden = names.length === 0;
    const empty = byId("history-empty");
    empty.hidden = names.length > 0;
    empty.textContent = Object.keys(this.jobs).length
      ? "No job matches the search."
      : "No runs yet. A run is recorded each time a task closes, fails or is abandoned.";
  }

  jobRow(name, job) {
    const row = element("tr");
    const duration = job.duration || {};
    const last = job.last;
    row.append(
      cell("th", pressedButton(name, { job: name }, name === this.job), { scope: "row" }),
      cell("td", String(job.runs)),
      cell("td", String(job.ok)),
      cell("td", String(job.failed)),
      cell("td", last ? outcomeLabel(last.status) + ", " + formatTime(last.ended_at) : ""),
      cell("td", formatRunDuration(duration.median)),
      cell("td", formatRunDuration(duration.p90)),
    );
    return row;
  }

  renderRuns() {
    const section = byId("job-runs");
    section.hidden = !this.job;
    if (!this.job) return;
    byId("runs-job").textContent = this.job;
    const oldestFirst = this.runs.slice().reverse();
    const job = this.jobs[this.job];
    const median = job && job.duration ? job.duration.median : null;
    const chart = byId("run-chart");
    drawChart(chart, oldestFirst, median);
    const medianText = typeof median === "number" ? ", median " + formatRunDuration(median) : "";
    chart.setAttribute("aria-label", `Durations of the last ${this.runs.length} runs of ${this.job}`
      + medianText + "; the table below lists the same runs.");
    for (const mark of chart.querySelectorAll("[data-run-id]")) {
      mark.classList.toggle("selected", mark.dataset.runId === this.runId);
    }
    byId("runs").tBodies[0].replaceChildren(...this.runs.map((run) => this.runRow(run)));
    this.renderDetails();
  }

  runRow(run) {
    const row = element("tr");
    const outcome = element("span", "outcome");
    outcome.append(legendMark(run.status), " " + outcomeLabel(run.status));
    row.append(
      cell("th", pressedButton(formatTime(run.started_at), { runId: run.id }, run.id === this.runId),
        { scope: "row" }),
      cell("td", outcome),
      cell("td", formatRunDuration(run.duration)),
    );
    return row;
  }

  renderDetails() {
    const run = this.runs.find((candidate) => candidate.id === this.runId);
    const details = byId("run-details");
    details.hidden = !run;
    if (!run) return;
    const fields = [
      ["Status", outcomeLabel(run.status)],
      ["Task", run.task_id],
      ["Started", formatTime(run.started_at)],
      ["Ended", formatTime(run.ended_at)],
      ["Duration", formatRunDuration(run.duration)],
      ["Progress", typeof run.n === "number" ? formatProgress(run.n, run.total, run.unit) : ""],
      ["Metrics", metricsText(run.metrics)],
      ["Postfix", run.postfix || ""],
    ];
    const list = byId("run-fields");
    list.replaceChildren();
    for (const [name, value] of fields) {
      if (!value) continue;
      list.append(cell("dt", name), cell("dd", value));
    }
    const log = Array.isArray(run.log) ? run.log : [];
    const failed = FAILED_RUN_STATUSES.includes(run.status);
    byId("run-log-heading").hidden = !failed;
    const pre = byId("run-log");
    pre.hidden = !failed;
    pre.textContent = log.length ? log.join("\n") : "(no log lines)";
  }
}

function metricsText(metrics) {
  if (!metrics || typeof metrics !== "object") return "";
  return Object.entries(metrics).map(([key, value]) => key + " " + formatMetric(value)).join(", ");
}
