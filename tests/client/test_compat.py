"""Programs written for the earlier build's client (PyPI progressista 0.2.1) work against this daemon.

The old package is installed from PyPI into `.venv-compat/` (git-ignored, kept between runs);
it needs Python 3.10 or newer, whichever leg runs the test.
"""

from __future__ import annotations

import fcntl
import glob
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.client.helpers import wait_task
from tests.support import IN_CI, REPO, clean_env

pytestmark = pytest.mark.integration

OLD_RELEASE = "progressista==0.2.1"
VENV = REPO / ".venv-compat"
MARKER = VENV / ".installed-0.2.1"


def _python_for_old_client() -> str:
    if sys.version_info >= (3, 10):
        return sys.executable
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{pyenv}/versions/3.1[0-9]*/bin/python3"))
    for name in ("python3.13", "python3.12", "python3.11", "python3.10"):
        for directory in os.environ.get("PATH", "").split(os.pathsep):
            candidates.append(os.path.join(directory, name))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    return _unavailable("no Python 3.10+ found for the progressista 0.2.1 client")


def _unavailable(message: str) -> str:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def old_python() -> str:
    """The Python of a venv holding the earlier build's client, created on first use."""
    VENV.parent.mkdir(exist_ok=True)
    with open(REPO / ".venv-compat.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not MARKER.exists():
            base = _python_for_old_client()
            steps = ([base, "-m", "venv", "--clear", str(VENV)],
                     [str(VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "--quiet",
                      OLD_RELEASE])
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    _unavailable(f"cannot install {OLD_RELEASE}: {done.stderr[-2000:]}")
            MARKER.touch()
    return str(VENV / "bin" / "python")


OLD_PROGRAM = """
    import sys
    from progressista.client import RemoteTqdm

    for _ in RemoteTqdm(range(300), task_id="compat:iter", desc="old client", push_every=0.05):
        pass
    bar = RemoteTqdm(total=40, task_id="compat:manual", unit="files", meta={"owner": "old"})
    for _ in range(40):
        bar.update(1)
    bar.set_description("renamed")
    bar.close()
    if sys.argv[1:] == ["meta-token"]:
        bar = RemoteTqdm(total=2, task_id="compat:meta-token", headers={},
                         meta={"_token": "tok", "kept": 1})
        bar.update(2)
        bar.close()
"""


def _run_old(python: str, url: str, token: str = "", args=()):
    env = clean_env({"PROGRESSISTA_SERVER_URL": url + "/progress"})
    if token:
        env["PROGRESSISTA_API_TOKEN"] = token
    return subprocess.run([python, "-c", textwrap.dedent(OLD_PROGRAM), *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(Path.home()))


def _check(daemon, headers=None):
    iterated = wait_task(daemon, "compat:iter", headers=headers, status="close")
    assert (iterated["n"], iterated["total"], iterated["desc"]) == (300, 300, "old client")
    manual = wait_task(daemon, "compat:manual", headers=headers, status="close")
    assert (manual["n"], manual["total"]) == (40, 40) and manual["desc"].startswith("renamed")
    assert (manual["unit"], manual["meta"]) == ("files", {"owner": "old"})


def test_old_client_without_token(old_python, daemon):
    done = _run_old(old_python, daemon.url)
    assert done.returncode == 0, done.stderr
    _check(daemon)


def test_old_client_with_token_in_header_and_in_meta(old_python, daemon_factory):
    daemon = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "tok"})
    done = _run_old(old_python, daemon.url, token="tok", args=["meta-token"])
    assert done.returncode == 0, done.stderr
    auth = {"Authorization": "Bearer tok"}
    _check(daemon, auth)
    via_meta = wait_task(daemon, "compat:meta-token", headers=auth, status="close")
    assert via_meta["meta"] == {"kept": 1}


def test_old_client_with_wrong_token_still_runs(old_python, daemon_factory):
    daemon = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "tok"})
    done = _run_old(old_python, daemon.url, token="wrong")
    assert done.returncode == 0, done.stderr
    status, _, body = daemon.request("GET", "/tasks", headers={"Authorization": "Bearer tok"})
    assert status == 200 and body["tasks"] == {}
