"""Redis is optional: without --redis-url the daemon imports neither redis-py nor `cluster/`."""

import subprocess
import sys


def test_the_daemon_imports_nothing_of_redis_until_asked_to():
    code = ("import sys, progressistad.daemon.main, progressistad.daemon.wiring,"
            " progressistad.web.app; print(sorted(m for m in sys.modules"
            " if m.split('.')[0] == 'redis' or m.startswith('progressistad.cluster')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
