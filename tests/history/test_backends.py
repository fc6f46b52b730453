"""Every backend answers the same: SQLite in a file, SQLite in memory, and Redis (real server).

Queries newest first with filters, keyset paging with a cursor over many runs (ties
included), the jobs summary's figures, deletion and retention by age and by count.
"""

from __future__ import annotations

import random

from progressistad.history import query
from progressistad.history.records import ABANDONED

from tests.history.conftest import run, shut
from tests.history.helpers import T0, run as make_run, until


async def written(backend, count):
    await until(lambda: backend.health()["queued"] == 0, what="runs written")
    page = await backend.runs(query.run_query(limit=1000))
    assert len(page["runs"]) == min(count, 1000)


def ids(page):
    return [r["id"] for r in page["runs"]]


def sample():
    """Runs of three jobs, some ending at the same instant."""
    runs = []
    for i in range(30):
        job = ("nightly", "backup", "train:a")[i % 3]
        status = ("close", "close", "error", ABANDONED)[i % 4]
        runs.append(make_run(job, status, ended_at=T0 + i // 2, duration=10 + i, task_id=f"{job}:{i}"))
    return runs


def newest_first(runs):
    return sorted(runs, key=lambda r: (r["ended_at"], r["id"]), reverse=True)


def test_runs_come_newest_first_with_every_filter(open_backend):
    async def body():
        backend = open_backend()
        runs = sample()
        backend.append(runs)
        await written(backend, len(runs))
        every = await backend.runs(query.run_query())
        assert ids(every) == ids({"runs": newest_first(runs)}) and every["next"] is None
        for arguments, keep in [
            ({"job": "nightly"}, lambda r: r["job"] == "nightly"),
            ({"status": "error"}, lambda r: r["status"] == "error"),
            ({"status": "close", "job": "backup"},
             lambda r: r["status"] == "close" and r["job"] == "backup"),
            ({"status": ABANDONED, "job": "backup"},
             lambda r: r["status"] == ABANDONED and r["job"] == "backup"),
            ({"since": T0 + 3, "until": T0 + 7}, lambda r: T0 + 3 <= r["ended_at"] < T0 + 7),
            ({"job": "train:a", "since": T0 + 10}, lambda r: r["job"] == "train:a"
             and r["ended_at"] >= T0 + 10),
            ({"job": "nobody"}, lambda r: False),
        ]:
            page = await backend.runs(query.run_query(**arguments))
            assert ids(page) == ids({"runs": newest_first(filter(keep, runs))}), arguments
        assert (await backend.runs(query.run_query(job="nightly")))["runs"][0] == \
            newest_first([r for r in runs if r["job"] == "nightly"])[0]
        await shut(backend)
    run(body())


def test_a_cursor_pages_through_many_runs_once_each_in_order(open_backend):
    async def body():
        backend = open_backend()
        rng = random.Random(7)
        runs = [make_run(f"job{rng.randrange(3)}", rng.choice(["close", "error"]),
                         ended_at=T0 + rng.randrange(400), duration=1, task_id=f"t{i}")
                for i in range(2500)]
        backend.append(runs)
        await until(lambda: backend.health()["queued"] == 0)
        for arguments in ({}, {"job": "job1"}, {"status": "error"}, {"job": "job2", "status": "close"},
                          {"since": T0 + 100, "until": T0 + 300}):
            seen, cursor = [], None
            while True:
                page = await backend.runs(query.run_query(limit=97, cursor=cursor, **arguments))
                assert len(page["runs"]) <= 97
                seen += ids(page)
                cursor = page["next"]
                if cursor is None:
                    break
            expected = newest_first(r for r in runs
                                    if r["job"] == arguments.get("job", r["job"])
                                    and r["status"] == arguments.get("status", r["status"])
                                    and arguments.get("since", 0) <= r["ended_at"]
                                    < arguments.get("until", float("inf")))
            assert seen == [r["id"] for r in expected], arguments
        await shut(backend)
    run(body())


def test_the_jobs_summary_counts_outcomes_and_gives_the_figures_of_the_last_close_runs(open_backend):
    async def body():
        backend = open_backend()
        runs = [make_run("nightly", "close", ended_at=T0 + i, duration=100 + i) for i in range(25)]
        runs += [make_run("nightly", "error", ended_at=T0 + 30, duration=5),
                 make_run("nightly", ABANDONED, ended_at=T0 + 31, duration=7),
                 make_run("backup", "error", ended_at=T0 + 40, duration=3),
                 make_run("train:a", "close", ended_at=T0 + 50, duration=60)]
        backend.append(runs)
        await written(backend, len(runs))
        answer = await backend.jobs(query.job_query())
        assert list(answer["jobs"]) == ["backup", "nightly", "train:a"] and answer["next"] is None
        nightly = answer["jobs"]["nightly"]
        assert (nightly["runs"], nightly["ok"], nightly["failed"]) == (27, 25, 2)
        assert nightly["last"] == runs[26]
        # The last 20 close runs lasted 105..124 s: nearest-rank median 114, 90th percentile 122.
        assert nightly["duration"] == {"median": 114, "p90": 122}
        assert answer["jobs"]["backup"]["duration"] == {"median": None, "p90": None}
        assert answer["jobs"]["train:a"]["duration"] == {"median": 60, "p90": 60}
        closes = await backend.closes(["nightly", "backup"])
        assert [c[2] for c in closes["nightly"]] == [124 - i for i in range(20)]
        assert closes["backup"] == []
        await shut(backend)
    run(body())


def test_jobs_match_a_glob_and_page_by_name(open_backend):
    async def body():
        backend = open_backend()
        names = [f"train:{i:03d}" for i in range(250)] + ["backup", "trains", "Train:x"]
        backend.append([make_run(job, ended_at=T0 + i) for i, job in enumerate(names)])
        await until(lambda: backend.health()["queued"] == 0)
        for pattern, expected in [("train:*", sorted(n for n in names if n.startswith("train:"))),
                                  ("train:1?[05]", ["train:100", "train:105", "train:110",
                                                    "train:115", "train:120", "train:125",
                                                    "train:130", "train:135", "train:140",
                                                    "train:145", "train:150", "train:155",
                                                    "train:160", "train:165", "train:170",
                                                    "train:175", "train:180", "train:185",
                                                    "train:190", "train:195"]),
                                  ("*s", ["trains"]), ("[bT]*", ["Train:x", "backup"]),
                                  (None, sorted(names))]:
            seen, cursor = [], None
            while True:
                page = await backend.jobs(query.job_query(pattern, limit=7, cursor=cursor))
                seen += list(page["jobs"])
                cursor = page["next"]
                if cursor is None:
                    break
            assert seen == expected, pattern
        await shut(backend)
    run(body())


def test_delete_by_job_and_age_returns_the_count_and_updates_the_summary(open_backend, clock):
    async def body():
        backend = open_backend()
        runs = [make_run(("a", "b")[i % 2], "close", ended_at=T0 + i) for i in range(40)]
        backend.append(runs)
        await written(backend, 40)
        assert await backend.delete("a", T0 + 10) == 5
        assert await backend.delete("nobody", None) == 0
        summary = (await backend.jobs(query.job_query()))["jobs"]
        assert (summary["a"]["runs"], summary["b"]["runs"]) == (15, 20)
        assert await backend.delete(None, T0 + 20) == 15
        assert await backend.delete("b", None) == 10
        assert list((await backend.jobs(query.job_query()))["jobs"]) == ["a"]
        assert await backend.delete(None, None) == 10
        assert (await backend.jobs(query.job_query()))["jobs"] == {}
        assert (await backend.runs(query.run_query()))["runs"] == []
        await shut(backend)
    run(body())


def test_retention_by_age_and_by_count(open_backend, clock):
    async def body():
        backend = open_backend(retention_days=1, max_runs=1500)
        clock.now = T0 + 86400 + 500
        runs = [make_run(f"j{i % 5}", "close", ended_at=T0 + i) for i in range(2500)]
        backend.append(runs)
        await until(lambda: backend.health()["queued"] == 0)
        await backend.maintain()
        kept = newest_first(runs)[:1500]
        assert len(kept) == 1500
        page = await backend.runs(query.run_query(limit=1000, since=T0))
        assert ids(page) == [r["id"] for r in kept[:1000]]
        summary = (await backend.jobs(query.job_query()))["jobs"]
        assert sum(job["runs"] for job in summary.values()) == 1500
        clock.now = T0 + 86400 + 2000  # the runs that ended before T0 + 2000 are a day old
        assert await backend.maintain() == 1500 - 500
        assert len((await backend.runs(query.run_query(limit=1000)))["runs"]) == 500
        await shut(backend)
    run(body())


def test_a_run_recorded_twice_is_kept_once(open_backend):
    async def body():
        backend = open_backend()
        one = make_run("j", "close")
        backend.append([one])
        backend.append([one, one])
        await until(lambda: backend.health()["queued"] == 0)
        assert ids(await backend.runs(query.run_query())) == [one["id"]]
        assert (await backend.jobs(query.job_query()))["jobs"]["j"]["runs"] == 1
        await shut(backend)
    run(body())


def test_a_run_keeps_every_field_and_any_text(open_backend):
    async def body():
        backend = open_backend()
        odd = make_run("jöb \u2603 \"quoted\" \\", "error", metrics={"loss": 0.25, "n": 3},
                       postfix="lr=0.1", desc="naïve \n desc", unit="it")
        backend.append([odd])
        await until(lambda: backend.health()["queued"] == 0)
        assert (await backend.runs(query.run_query(job=odd["job"])))["runs"] == [odd]
        jobs = await backend.jobs(query.job_query(odd["job"]))
        assert jobs["jobs"][odd["job"]]["last"] == odd
        assert backend.health()["ok"] and backend.health()["error"] is None
        await shut(backend)
    run(body())


def by_status(runs, job):
    """What `metrics` owes a job: runs and the last end per status, from the runs themselves."""
    figures = {}
    for status in ("close", "error", ABANDONED):
        ended = [r["ended_at"] for r in runs if r["job"] == job and r["status"] == status]
        figures[status] = {"runs": len(ended), "last_ended_at": max(ended) if ended else None}
    return figures


def test_the_figures_for_metrics_count_each_status_and_its_last_end(open_backend):
    async def body():
        backend = open_backend()
        runs = sample()
        backend.append(runs + runs[:5])  # a run given twice counts once
        await written(backend, len(runs))
        figures = await backend.metrics(2)
        assert list(figures["jobs"]) == ["backup", "nightly"] and figures["more"] is True
        jobs = await backend.jobs(query.job_query(limit=2))
        for job, held in figures["jobs"].items():
            assert held["statuses"] == by_status(runs, job)
            assert {k: v for k, v in held.items() if k != "statuses"} == jobs["jobs"][job]
        # Retention removes the oldest first: the last end of a status stands until the last
        # run of that status goes.
        assert await backend.delete("nightly", T0 + 12) > 0
        kept = [r for r in runs if not (r["job"] == "nightly" and r["ended_at"] < T0 + 12)]
        assert (await backend.metrics(5))["jobs"]["nightly"]["statuses"] == by_status(kept, "nightly")
        assert (await backend.metrics(5))["more"] is False
        await shut(backend)
    run(body())
