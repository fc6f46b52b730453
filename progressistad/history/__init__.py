"""Run history and expectations (SPEC section 14): what ran, how long it took, whether a run is late.

The modules, each with one job:

- `records` (pure): when a change of a task ends a run (`step`, `ended_runs`) and the
  run's record (`run_for`); a run belongs to `meta.job`, else the task id.
- `expectations` (pure): nearest-rank median and 90th percentile of a job's last 20
  close runs, `overdue`, and the per-job cache (`Expectations`).
- `query`: the API's arguments (`run_query`, `job_query`, raising `QueryError`), the
  opaque cursor, job globs with SQLite's GLOB rules, a job's summary: shared by the
  backends so that they answer the same.
- `backlog`: runs accepted but not yet stored (bounded, drops counted) and the retry pace.
- `sqlite`: `SQLiteHistory`, the embedded backend (a file, or in memory), one worker thread.
- `redis`: `RedisHistory`, the group's backend with `--redis-url` (imports redis-py).
- `service`: `History`, what the daemon calls, and `open_history` that builds it.

The seam for the wiring, every call on the IOLoop thread:

    history = open_history(clock=..., path=history_path(opts.history_path, opts.storage_path),
                           redis_client=..., retention_days=..., max_runs=...,
                           overdue_factor=..., children=...)   # None: history off
    history.record(runs)             # runs ended (records.run_for / ended_runs); never blocks
    history.observe(before, after, run_started_at)   # ended_runs + record; new run start
    history.served_fields(task, run_started_at, now) # {"expected_duration", "overdue"}
    history.expectation(job)         # Expectation or None; O(1)
    await history.runs(job=, status=, since=, until=, limit=, cursor=)  # GET /history
    await history.jobs(job=, limit=, cursor=)        # GET /history/jobs (job is a GLOB)
    await history.delete(job=, older_than=)          # DELETE /history -> runs removed
    await history.maintain()         # retention, once per cleanup interval
    history.health()                 # {"ok", "error", "queued", "dropped", ...} for /health
    await history.close()            # at shutdown: True when nothing was lost

Queries raise `query.QueryError` (a 400 naming `field`) and `query.HistoryUnavailable`
(a 503). Importing this package imports neither sqlite3's backend nor redis-py.
"""
