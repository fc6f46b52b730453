"""Notifications (SPEC section 13): be told when a job finishes, fails, stalls, resumes or overruns.

The daemon holds one `Alerts` (service.py), built on the running loop:

    alerts = Alerts.load(path, env, clock, dashboard_url=..., hostname=...)  # RouteError: exit 2
    alerts.prime(tasks)            # served forms of the tasks present at start
    service.add_listener(alerts.listener(service.store, served=..., overdue=...))
    alerts.start()
    alerts.reload(path, env)       # SIGHUP; False (logged) keeps the old routes
    await alerts.send_test(route)  # POST /notifications/test; UnknownRoute
    await alerts.deliveries()      # GET /notifications
    alerts.stats(), alerts.health(), alerts.config.describe()   # /metrics, /health, --print-config
    await alerts.close()

With several daemons on one Redis, `shared` gives the queue, the delivery log
and the gathering lease (`Alerts(queue=..., journal=..., gathers=lease)`).

The pieces, each with one job: `routes` (the operator's INI file into frozen
routes) and `redaction` (a URL's safe form); `events` (which notification
events a change makes, which routes want them; pure); `messages` (words and
the webhook body; pure) and `grouping` (bursts and rate limits; pure);
`sinks` (one attempt to one receiver); `queue` (where messages wait and the
delivery log, behind an interface a shared store implements: `shared`) and
`delivery` (attempts, backoff, counters).
"""

from progressistad.alerts.routes import RouteError
from progressistad.alerts.service import Alerts, UnknownRoute

__all__ = ["Alerts", "RouteError", "UnknownRoute"]
