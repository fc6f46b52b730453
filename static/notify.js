// Opt-in browser notifications (the Notification API) for the tasks the current filter shows,
// only while this tab is hidden: a bar that finishes, fails or stalls.

import { CLOSE, ERROR, STALE, START, UPDATE } from "./contract.js";
import { groupOf } from "./tasks.js";

const STORAGE_KEY = "progressista.notifications";
/** Changes of one delta shown one by one; beyond that, one notification sums them up. */
const MOST_AT_ONCE = 3;
const WORD_OF_STATUS = { [CLOSE]: "finished", [ERROR]: "failed", [STALE]: "stalled" };
/** A task can stall from these only: one recovered after a restart is not announced. */
const RUNNING = new Set([START, UPDATE]);

/** Why this page cannot offer notifications, or null when it can. */
export function unavailableReason(win = window) {
  if (!("Notification" in win)) return "This browser does not offer notifications.";
  if (!win.isSecureContext) {
    return "Notifications need a secure page, and this one is plain http to "
      + `${win.location.host}: open the dashboard over https (a proxy such as Caddy in front) `
      + "or on the daemon's own host, at 127.0.0.1.";
  }
  return null;
}

/** What a change from `before` to `after` is worth telling ("finished", ...), or null. */
export function changeOf(before, after) {
  if (!before || before.status === after.status) return null;
  if (after.status === STALE && !RUNNING.has(before.status)) return null;
  return WORD_OF_STATUS[after.status] || null;
}

function labelOf(task) {
  return typeof task.desc === "string" && task.desc ? `${task.desc} (${task.task_id})` : task.task_id;
}

export class BrowserNotifier {
  /** `toggle`: the opt-in checkbox; `note`: where the page says why it is unavailable. */
  constructor(toggle, note, storage = window.localStorage) {
    this.toggle = toggle;
    this.note = note;
    this.storage = storage;
    this.shown = 0;
  }

  start() {
    const reason = unavailableReason();
    if (reason) {
      this.toggle.checked = false;
      this.toggle.disabled = true;
      this.say(reason);
      return;
    }
    this.toggle.checked = this.storage.getItem(STORAGE_KEY) === "on"
      && Notification.permission === "granted";
    this.toggle.addEventListener("change", () => this.toggled());
  }

  get enabled() {
    return this.toggle.checked && !this.toggle.disabled && Notification.permission === "granted";
  }

  async toggled() {
    if (!this.toggle.checked) {
      this.storage.setItem(STORAGE_KEY, "off");
      this.say(null);
      return;
    }
    const permission = Notification.permission === "granted"
      ? "granted" : await Notification.requestPermission();
    if (permission !== "granted") {
      this.toggle.checked = false;
      this.say("The browser blocks notifications for this page: allow them in its site settings.");
      return;
    }
    this.storage.setItem(STORAGE_KEY, "on");
    this.say(null);
  }

  /** Hear a delta before the page applies it: `previous` maps ids to the tasks as shown. */
  observe(tasks, previous, filters) {
    if (!this.enabled || !document.hidden) return;
    const changes = [];
    for (const id of Object.keys(tasks)) {
      const before = previous.get(id);
      const word = changeOf(before, tasks[id]);
      if (word && filters.matches(before)) changes.push({ task: tasks[id], word });
    }
    if (changes.length > MOST_AT_ONCE) this.summary(changes);
    else for (const { task, word } of changes) this.show(`${labelOf(task)} ${word}`, task.task_id);
  }

  summary(changes) {
    const counts = new Map();
    for (const { word } of changes) counts.set(word, (counts.get(word) || 0) + 1);
    const groups = [...new Set(changes.map(({ task }) => groupOf(task) || task.task_id))].sort();
    const title = `${changes.length} tasks: ` + [...counts].map(([word, n]) => `${n} ${word}`).join(", ");
    this.show(title, "summary", groups.slice(0, 5).join(", "));
  }

  show(title, tag, body) {
    const options = { tag: "progressista:" + tag };
    if (body) options.body = body;
    const notification = new Notification(title, options);
    notification.onclick = () => {
      window.focus();
      notification.close();
    };
    this.shown += 1;
  }

  say(text) {
    this.note.textContent = text || "";
    this.note.hidden = !text;
  }
}
