"""sd_notify wrapper: silent outside systemd, watchdog only for our pid, the STATUS= line."""

from __future__ import annotations

import logging

from progressistad.daemon.logs import JournalFormatter, syslog_priority
from progressistad.daemon.systemd import EventRate, Notifier, status_line, watchdog_interval


class Recorder:
    def __init__(self):
        self.sent = []

    def notify(self, text):
        self.sent.append(text)


def test_outside_systemd_nothing_is_sent_and_nothing_fails():
    notifier = Notifier.from_environment({}, pid=123)
    assert not notifier.enabled and notifier.watchdog_seconds is None
    notifier.ready()
    notifier.status("x")
    notifier.stopping()


def test_watchdog_applies_only_to_our_pid():
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}, 42) == 4.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "42"}, 42) == 4.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "41"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_interval({}, 42) is None


def test_messages_and_status_sent_once_per_change():
    recorder = Recorder()
    notifier = Notifier(recorder)
    notifier.ready()
    notifier.status("1 task,\n 0 dashboards")
    notifier.status("1 task, 0 dashboards")
    notifier.reloading()
    notifier.stopping()
    assert recorder.sent[:2] == ["READY=1", "STATUS=1 task, 0 dashboards"]
    reloading = recorder.sent[2].split("\n")
    assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
    assert recorder.sent[3:] == ["STOPPING=1"]


def test_status_line_and_event_rate():
    times = iter([0.0, 2.0, 4.0])
    rate = EventRate(clock=lambda: next(times))
    assert rate.per_second(10) == 0.0
    assert rate.per_second(30) == 10.0
    assert status_line(1, 2, 10.0) == "1 task, 2 dashboards, 10.0 events/s"
    assert status_line(3, 1, 0, "cannot write the state file: Read-only file system") == \
        "3 tasks, 1 dashboard, 0.0 events/s; cannot write the state file: Read-only file system"


def test_journal_format_has_priority_and_no_timestamp():
    record = logging.LogRecord("progressistad", logging.WARNING, __file__, 1, "disk %s", ("full",),
                               None)
    assert JournalFormatter().format(record) == "<4>progressistad: disk full"
    assert syslog_priority(logging.ERROR) == 3 and syslog_priority(logging.DEBUG) == 7
