// Calls to the daemon's HTTP API, relative to the page so a --base-path prefix works.
// Credentials travel in the HttpOnly cookie the daemon set; none are ever put in a URL.

function apiUrl(path) {
  return new URL("../" + path, location.href).href;
}

async function request(method, path) {
  const response = await fetch(apiUrl(path), {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" },
  });
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new Error(`${method} ${path}: ${response.status} ${message}`);
  }
  return body;
}

/** What the page's credentials allow: {required: bool, access: "none"|"read"|"write"}. */
/** Null when the daemon cannot say (unreachable); /health answers 503 when degraded, still with auth. */
export async function fetchAccess() {
  try {
    const response = await fetch(apiUrl("health"), { credentials: "same-origin", cache: "no-store" });
    const health = await response.json();
    return health && health.auth ? health.auth : null;
  } catch (error) {
    return null;
  }
}

export function discardTask(taskId) {
  return request("DELETE", "tasks/" + encodeURIComponent(taskId));
}

/** Remove every task whose status is one of `statuses`. */
export function clearTasks(statuses) {
  return request("DELETE", "tasks?status=" + statuses.map(encodeURIComponent).join(","));
}

/** What the daemon stored for a task's sparklines: {task_id, t, n, rate, metrics: {key: [...]}}. */
export function fetchSeries(taskId) {
  return request("GET", "tasks/" + encodeURIComponent(taskId) + "/series");
}

/** A task's log tail, oldest line first: {task_id, lines}. */
export function fetchLog(taskId) {
  return request("GET", "tasks/" + encodeURIComponent(taskId) + "/log");
}
