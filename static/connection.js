// The live link to the daemon: /ws?protocol=delta, seq checking, a watchdog on silence,
// reconnects with backoff.

import {
  WS_CLOSE_UNAUTHORIZED, WS_HEARTBEAT_MISSED, WS_HEARTBEAT_SECONDS, WS_MESSAGE_DELTA,
  WS_MESSAGE_HEARTBEAT, WS_MESSAGE_SNAPSHOT, WS_PROTOCOL_DELTA, WS_PROTOCOL_PARAM,
} from "./contract.js";

/** Close codes of the page's own choosing: it is leaving, or it drops a socket to resync. */
const CLOSE_NORMAL = 1000;
const CLOSE_RESYNC = 4000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
/**
 * The daemon sends something at least once a heartbeat period; this long without a word the
 * link is dead even if the socket has not noticed (a peer gone without a FIN, a frozen daemon).
 */
const SILENCE_LIMIT_MS = WS_HEARTBEAT_SECONDS * WS_HEARTBEAT_MISSED * 1000;

/** Socket URL next to the page (works under a --base-path prefix), ws: or wss: like the page. */
export function socketUrl(pageHref) {
  const url = new URL("../ws", pageHref);
  url.searchParams.set(WS_PROTOCOL_PARAM, WS_PROTOCOL_DELTA);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  return url.href;
}

/** Delay before reconnect attempt `attempt` (0-based): exponential with full jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

const HANDLERS = ["onSnapshot", "onDelta", "onState"];

/**
 * Keeps one WebSocket open and hands its messages over.
 *
 * handlers: onSnapshot(tasks, receivedAt), onDelta(tasks, removed, receivedAt),
 * onState(state, detail) with state one of "connecting", "connected",
 * "reconnecting" (detail: ms until the next try) and "unauthorized".
 * Without handlers, what they would be told is kept until `attach` gives them.
 * A socket that brings no message for SILENCE_LIMIT_MS, handshake included, is given up.
 */
export class LiveConnection {
  constructor(url, handlers = null) {
    this.url = url;
    this.handlers = handlers || this.keeper();
    this.socket = null;
    this.seq = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.silenceTimer = null;
    this.stopped = false;
    this.arrivedAt = 0;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  /** Handlers that keep each call, with the arrival time of the message behind it. */
  keeper() {
    this.kept = [];
    return Object.fromEntries(HANDLERS.map((name) =>
      [name, (...args) => this.kept.push({ name, args, arrivedAt: this.arrivedAt })]));
  }

  /** Hand over to `handlers`, first what they missed, in order. */
  attach(handlers) {
    const kept = this.kept || [];
    const arrivedAt = this.arrivedAt;
    this.kept = null;
    this.handlers = handlers;
    for (const call of kept) {
      this.arrivedAt = call.arrivedAt;
      handlers[call.name](...call.args);
    }
    this.arrivedAt = arrivedAt;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    if (this.socket) this.socket.close(CLOSE_NORMAL, "page closed");
  }

  open() {
    this.retryTimer = null;
    this.seq = null;
    this.handlers.onState(this.attempt === 0 ? "connecting" : "reconnecting", 0);
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onmessage = (event) => this.receive(socket, event.data);
    socket.onclose = (event) => this.closed(socket, event.code);
    // Errors are always followed by close, which decides what to do.
    socket.onerror = () => {};
    this.watch(socket);
  }

  /** (Re)start the watchdog: `socket` must bring a message within SILENCE_LIMIT_MS. */
  watch(socket) {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.silent(socket), SILENCE_LIMIT_MS);
  }

  /** Nothing heard for too long: drop the socket without waiting for it, then reconnect. */
  silent(socket) {
    if (socket !== this.socket || this.stopped) return;
    this.socket = null;
    socket.close(CLOSE_RESYNC, "heard nothing");
    this.retry();
  }

  receive(socket, text) {
    if (socket !== this.socket) return;
    this.watch(socket);
    const receivedAt = Date.now();
    this.arrivedAt = performance.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      this.resync("unreadable message");
      return;
    }
    if (message.type === WS_MESSAGE_SNAPSHOT) {
      this.seq = message.seq;
      this.attempt = 0;
      this.handlers.onSnapshot(message.tasks || {}, receivedAt);
      this.handlers.onState("connected", 0);
    } else if (message.type === WS_MESSAGE_DELTA) {
      if (this.seq === null || message.seq !== this.seq + 1) {
        this.resync("missed an update");
        return;
      }
      this.seq = message.seq;
      this.handlers.onDelta(message.tasks || {}, message.removed || [], receivedAt);
    } else if (message.type === WS_MESSAGE_HEARTBEAT && message.seq !== this.seq) {
      this.resync("missed an update");
    }
  }

  /** Drop the socket and connect again at once: the new snapshot replaces our state. */
  resync(reason) {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(CLOSE_RESYNC, reason);
    this.open();
  }

  closed(socket, code) {
    if (socket !== this.socket || this.stopped) return;
    this.socket = null;
    clearTimeout(this.silenceTimer);
    if (code === WS_CLOSE_UNAUTHORIZED) {
      this.handlers.onState("unauthorized", 0);
      return;
    }
    this.retry();
  }

  /** Connect again after the backoff delay of this attempt. */
  retry() {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.handlers.onState("reconnecting", delay);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
