"""The booted leg's machine: one minimal Debian root per release, booted once, the .deb copied in.

Its tests are the ordered steps of an operator's session on that machine; once a step
fails, the later ones (which stand on it) are reported as expected failures.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Dict

import pytest

from tests.booted.machine import RELEASES, Booted, Machine, debian_mirror, root_tarball
from tests.packaging.helpers import require_root
from tests.support import require_tool

FAILED_STEP: Dict[str, str] = {}
"""Release -> the first step that failed on it."""


@pytest.fixture(scope="module", params=RELEASES)
def booted(request, built_deb, tmp_path_factory):
    """A booted minimal Debian `request.param` with the built .deb in /root, not yet installed."""
    require_root()
    tools = {name: require_tool(name) for name in ("mmdebstrap", "systemd-nspawn", "nsenter", "unshare")}
    release = request.param
    tarball = root_tarball(release, debian_mirror())
    work = tmp_path_factory.mktemp(f"booted-{release}")
    root = work / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True, timeout=300)
    shutil.copy(built_deb, root / "root" / built_deb.name)
    machine = Machine(release, root, work / "console.log")
    try:
        machine.boot(tools["systemd-nspawn"])
        yield Booted(machine, f"/root/{built_deb.name}")
    finally:
        machine.shutdown()
        machine.remove()


def _release(item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("booted", "") if callspec else ""


def pytest_runtest_setup(item):
    failed = FAILED_STEP.get(_release(item))
    if failed:
        pytest.xfail(f"an earlier step failed on this machine: {failed}")


def pytest_runtest_makereport(item, call):
    if call.excinfo is not None and call.when in ("setup", "call") and _release(item):
        if not call.excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception)):
            FAILED_STEP.setdefault(_release(item), item.name)
