"""What the daemon does before serving: the open-files limit, the one line of a bad configuration."""

from __future__ import annotations

import logging
import os
import resource

from progressistad.daemon.logs import journal_line
from progressistad.daemon.descriptors import (
    RESERVED_MIN, connection_limit, open_files_limit, raise_open_files_limit, reserved,
)


class Limits:
    """getrlimit/setrlimit stand-ins holding one (soft, hard) pair."""

    def __init__(self, soft, hard, refuse=False):
        self.value = (soft, hard)
        self.refuse = refuse
        self.calls = []

    def get(self, which):
        assert which == resource.RLIMIT_NOFILE
        return self.value

    def set(self, which, value):
        assert which == resource.RLIMIT_NOFILE
        self.calls.append(value)
        if self.refuse:
            raise ValueError("not allowed to raise maximum limit")
        self.value = value


def test_soft_limit_is_raised_to_the_hard_one_and_said_once_at_debug(caplog):
    limits = Limits(1024, 65536)
    with caplog.at_level(logging.DEBUG, "progressistad"):
        raise_open_files_limit(limits.get, limits.set)
    assert limits.value == (65536, 65536)
    (record,) = [r for r in caplog.records if "open files" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert "1024" in record.getMessage() and "65536" in record.getMessage()


def test_a_limit_already_at_the_hard_one_is_left_alone(caplog):
    limits = Limits(4096, 4096)
    with caplog.at_level(logging.DEBUG, "progressistad"):
        raise_open_files_limit(limits.get, limits.set)
    assert limits.calls == [] and caplog.records == []


def test_a_refused_raise_keeps_the_soft_limit_and_says_why_at_debug(caplog):
    limits = Limits(1024, resource.RLIM_INFINITY, refuse=True)
    with caplog.at_level(logging.DEBUG, "progressistad"):
        raise_open_files_limit(limits.get, limits.set)
    assert limits.value == (1024, resource.RLIM_INFINITY)
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG and "not allowed" in record.getMessage()


def test_the_real_limit_can_be_raised_in_this_process():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        raise_open_files_limit()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert hard == before[1]
        assert soft == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_the_connection_limit_keeps_an_eighth_of_the_open_files_and_at_least_64():
    assert reserved(256) == RESERVED_MIN == 64 and reserved(65536) == 8192
    assert connection_limit(0, 256) == 192
    assert connection_limit(0, 65536) == 65536 - 8192
    assert connection_limit(0, 40) == 1, "a tiny limit still serves one connection"
    assert connection_limit(0, None) > 10**6, "no open-files limit, no derived bound"
    assert open_files_limit(Limits(300, 4096).get) == 300
    assert open_files_limit(Limits(resource.RLIM_INFINITY, resource.RLIM_INFINITY).get) is None


def test_a_configured_connection_limit_wins_and_one_above_the_room_is_warned_about(caplog):
    with caplog.at_level(logging.DEBUG, "progressistad"):
        assert connection_limit(100, 256) == 100
        assert caplog.records == []
        assert connection_limit(1000, 256) == 1000
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "--max-connections 1000" in record.getMessage() and "192" in record.getMessage()


def test_a_line_before_logging_carries_its_priority_only_for_the_journal(tmp_path):
    with open(tmp_path / "stderr", "w") as stream:
        stat = os.fstat(stream.fileno())
        journal = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert journal_line(logging.ERROR, "progressistad: bad", journal, stream) == \
            "<3>progressistad: bad"
        assert journal_line(logging.ERROR, "progressistad: bad", {}, stream) == "progressistad: bad"
        other = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"}
        assert journal_line(logging.ERROR, "progressistad: bad", other, stream) == \
            "progressistad: bad"
