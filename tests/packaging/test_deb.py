"""The Debian package: built with dpkg-buildpackage, lint-clean, installed and run on Debian's Python."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

import pytest

from progressistad import __version__
from tests.packaging.helpers import (
    SECCOMP_EXEC,
    SYSTEM_PYTHON,
    UNITS,
    require_root,
    require_system_python_module,
    ws_messages,
)
from tests.support import REPO, DaemonProcess, require_tool

pytestmark = pytest.mark.packaging

APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-qq"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
EXPECTED_FILES = [
    "/usr/bin/progressistad",
    "/usr/bin/progressista",
    "/etc/progressista/progressistad.conf",
    "/etc/progressista/notify.conf",
    "/lib/systemd/system/progressistad.service",
    "/lib/systemd/system/progressistad.socket",
    "/lib/systemd/system/progressistad-activated.service",
    "/usr/share/man/man8/progressistad.8.gz",
    "/usr/share/man/man1/progressista.1.gz",
    DIST_PACKAGES + "/progressistad/contract.py",
    DIST_PACKAGES + "/progressistad/core/store.py",
    DIST_PACKAGES + "/progressistad/web/app.py",
    DIST_PACKAGES + "/progressistad/daemon/main.py",
    DIST_PACKAGES + "/progressistad/cluster/__init__.py",
    DIST_PACKAGES + "/progressistad/client/cli.py",
    DIST_PACKAGES + "/progressistad/static/index.html",
    "/usr/share/doc/progressistad/copyright",
    "/usr/share/doc/progressistad/examples/Caddyfile",
    "/usr/share/doc/progressistad/examples/Caddyfile.path-prefix",
    "/usr/share/doc/progressistad/examples/Caddyfile.cluster",
    "/usr/share/doc/progressistad/examples/notify.conf",
]


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


def deb_files(deb: Path) -> List[str]:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    return [line.split()[5].lstrip(".") for line in listing.splitlines()]


def test_make_deb_names_the_package_after_the_version(built_deb):
    assert built_deb.name == f"progressistad_{__version__}_all.deb"
    assert deb_field(built_deb, "Version") == __version__


def test_depends_on_debians_libraries(built_deb):
    depends = [d.strip() for d in deb_field(built_deb, "Depends").split(",")]
    # procps: /bin/kill, which ExecReload= calls.
    for package in ("python3-tornado", "python3-marshmallow", "python3-configargparse",
                    "python3-sdnotify", "python3-tqdm", "procps"):
        assert any(d.split()[0] == package for d in depends), (package, depends)
    assert "python3-redis" in deb_field(built_deb, "Suggests")


def test_ships_commands_units_man_pages_dashboard_and_conffile(built_deb, tmp_path):
    files = deb_files(built_deb)
    for path in EXPECTED_FILES:
        assert path in files, path
    dashboard = [p.relative_to(REPO / "static") for p in (REPO / "static").rglob("*") if p.is_file()]
    assert dashboard
    for path in dashboard:
        assert f"{DIST_PACKAGES}/progressistad/static/{path}" in files, f"dashboard file {path} not shipped"
    subprocess.run(["dpkg-deb", "-e", str(built_deb), str(tmp_path)], check=True)
    assert sorted((tmp_path / "conffiles").read_text().split()) == [
        "/etc/progressista/notify.conf", "/etc/progressista/progressistad.conf"]
    assert "deb-systemd-helper enable 'progressistad.service'" in (tmp_path / "postinst").read_text()


def test_lintian_reports_no_errors_and_no_warnings(built_deb):
    lintian = require_tool("lintian")
    result = subprocess.run([lintian, "-EviIL", "+pedantic", str(built_deb)], capture_output=True,
                            text=True, timeout=300)
    tags = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], result.stdout


@pytest.fixture(scope="module")
def installed_deb(built_deb):
    """The package installed with apt; purged afterwards whatever happens."""
    require_root()
    require_tool("apt-get")

    def purge():
        subprocess.run(APT + ["purge", "progressistad"], env=APT_ENV, capture_output=True, timeout=600)

    purge()
    result = subprocess.run(APT + ["install", "--no-install-recommends", str(built_deb.resolve())],
                            env=APT_ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield built_deb
    finally:
        purge()
    assert not Path("/usr/bin/progressistad").exists()
    assert not Path("/etc/progressista/progressistad.conf").exists()
    assert not Path("/etc/progressista/notify.conf").exists()


def test_installed_package_runs_on_debians_python(installed_deb, tmp_path):
    installed = subprocess.run(["dpkg", "-L", "progressistad"], capture_output=True, text=True,
                               check=True).stdout.split()
    for path in EXPECTED_FILES:
        assert path in installed, path
    assert Path("/usr/bin/progressistad").read_text().splitlines()[0] == "#!/usr/bin/python3"
    code = ("import progressistad, tornado, marshmallow, configargparse, sdnotify; "
            "print(progressistad.__file__, tornado.__file__, marshmallow.__file__)")
    where = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           check=True)
    assert all(path.startswith(DIST_PACKAGES) for path in where.stdout.split()), where.stdout
    assert os.path.islink("/etc/systemd/system/multi-user.target.wants/progressistad.service")

    # Under the TCP unit's seccomp filter and socket families, as systemd would run it.
    require_system_python_module("seccomp", "python3-seccomp")
    confined = [SYSTEM_PYTHON, str(SECCOMP_EXEC), "--families", "AF_INET,AF_INET6,AF_UNIX", "--"]
    with DaemonProcess(command=confined + ["/usr/bin/progressistad"], cwd=tmp_path) as proc:
        assert os.readlink(f"/proc/{proc.proc.pid}/exe").startswith("/usr/bin/python3")
        status, _, health = proc.request("GET", "/health")
        assert status == 200 and health["status"] == "ok"
        status, _, body = proc.request("POST", "/progress", {"task_id": "deb", "n": 1, "total": 3})
        assert (status, body["accepted"]) == (200, 1)
        (message,) = ws_messages(proc.ws_url + "/ws")
        assert message["tasks"]["deb"]["total"] == 3
        status, _, page = proc.request("GET", "/static/index.html")
        assert status == 200 and "<html" in page
        assert proc.stop() == 0


def test_installed_units_verify_silently(installed_deb, tmp_path):
    tool = require_tool("systemd-analyze")
    units = [f"/lib/systemd/system/{name}" for name in UNITS]
    result = subprocess.run([tool, "verify", "--man=no", *units], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert (result.stdout + result.stderr).strip() == ""
    assert result.returncode == 0
