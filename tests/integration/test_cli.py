"""The daemon's command line as a subprocess: precedence, one-line errors, exit statuses."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support import DaemonProcess, clean_env

pytestmark = pytest.mark.integration


def progressistad(*args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "progressistad", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_print_config_shows_precedence_and_sources(tmp_path):
    config = tmp_path / "d.conf"
    config.write_text("port = 1111\nretention-seconds = 30\nstale-seconds = 9\n")
    result = progressistad("--config", str(config), "--port", "3333", "--print-config",
                           env={"PROGRESSISTA_RETENTION_SECONDS": "40",
                                "PROGRESSISTA_API_TOKENS": "very-secret-token"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "port = 3333  # flag --port" in lines
    assert "retention-seconds = 40  # variable PROGRESSISTA_RETENTION_SECONDS" in lines
    assert f"stale-seconds = 9  # file {config}:3" in lines
    assert "cleanup-interval = 5  # default" in lines
    assert "very-secret-token" not in result.stdout + result.stderr


def test_progressista_serve_is_the_same_daemon():
    result = subprocess.run([sys.executable, "-m", "progressistad.client.cli", "serve", "--port", "7",
                             "--print-config"], env=clean_env(), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0 and "port = 7  # flag --port" in result.stdout


@pytest.mark.parametrize("args, env, expected", [
    (["--port", "abc"], {}, "--port 'abc' from flag --port: not an integer"),
    ([], {"PROGRESSISTA_PERSIST_INTERVAL": "-1"},
     "--persist-interval '-1' from variable PROGRESSISTA_PERSIST_INTERVAL"),
    (["--config", "{conf}"], {}, "unknown key 'colour' in {conf}:2"),
    (["--config", "{missing}"], {}, "--config '{missing}' from flag --config: cannot read it"),
    (["--api-tokens-file", "{missing}"], {}, "from flag --api-tokens-file: cannot read it"),
])
def test_bad_values_exit_2_with_one_line(tmp_path, args, env, expected):
    conf = tmp_path / "bad.conf"
    conf.write_text("port = 1\ncolour = blue\n")
    names = {"conf": str(conf), "missing": str(tmp_path / "missing")}
    result = progressistad(*[a.format(**names) for a in args], env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("progressistad: ")
    assert expected.format(**names) in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_version_and_help():
    version = progressistad("--version")
    assert version.returncode == 0 and version.stdout.startswith("progressistad ")
    help_text = progressistad("--help").stdout
    for needle in ("--storage-path", "PROGRESSISTA_STORAGE_PATH", "--api-tokens-file",
                   "CREDENTIALS_DIRECTORY", "SIGHUP", "Exit status"):
        assert needle in help_text


def test_port_taken_exits_1_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        daemon = DaemonProcess(port=port)
        try:
            daemon.start(wait=False)
            assert daemon.proc.wait(30) == 1
            lines = daemon.logs().strip().splitlines()
            assert len(lines) == 1
            assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in lines[0]
        finally:
            daemon.__exit__()


def test_address_not_available_exits_1():
    result = progressistad("--host", "192.0.2.1", "--port", "0")
    assert result.returncode == 1
    assert "no such address on this host" in result.stderr
    assert "Traceback" not in result.stderr
