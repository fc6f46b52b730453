"""The RPM spec: parsed, built as a source RPM, and built as the noarch package with stand-ins."""

from __future__ import annotations

import fnmatch
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from progressistad import __version__
from tests.packaging.helpers import require_system_python_module
from tests.support import REPO, require_tool

pytestmark = pytest.mark.packaging

SPEC = REPO / "packaging" / "rpm" / "progressistad.spec"
# Stand-ins for systemd-rpm-macros, which Debian's rpm lacks, so %files can be read.
DEFINES = ["--define", "_unitdir /usr/lib/systemd/system"]
STANDINS = Path(__file__).resolve().parent / "rpm_standins"
SKIPPED = (".git", "build", "dist", "var", "node_modules", "__pycache__")


def rpmspec(*args: str) -> str:
    tool = require_tool("rpmspec")
    result = subprocess.run([tool, *DEFINES, *args, str(SPEC)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    return result.stdout


def test_spec_version_is_the_package_version():
    assert rpmspec("-q", "--srpm", "--qf", "%{version}\n").strip() == __version__


def test_parsed_spec_uses_fedora_python_and_systemd_macros():
    parsed = rpmspec("-P")
    for macro in ("%pyproject_buildrequires", "%pyproject_wheel", "%pyproject_install",
                  "%pyproject_save_files progressistad", "%pyproject_check_import",
                  "%systemd_post progressistad.service", "%systemd_preun progressistad.service",
                  "%systemd_postun_with_restart progressistad.service"):
        assert macro in parsed, macro
    assert "%config(noreplace) /etc/progressista/progressistad.conf" in parsed
    assert "%config(noreplace) /etc/progressista/notify.conf" in parsed
    for unit in ("progressistad.service", "progressistad.socket", "progressistad-activated.service"):
        assert f"/usr/lib/systemd/system/{unit}\n" in parsed
        assert (REPO / "systemd" / unit).exists()
    assert "/usr/share/man/man8/progressistad.8*" in parsed


def _source_filter(info: tarfile.TarInfo):
    parts = Path(info.name).parts[1:]
    if any(p in SKIPPED or p.startswith(".venv") or p.endswith(".egg-info") for p in parts):
        return None
    return info


def rpmbuild(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """rpmbuild on the spec with Source0 made from this tree, everything under `tmp_path`."""
    tool = require_tool("rpmbuild")
    sources = tmp_path / "SOURCES"
    sources.mkdir()
    with tarfile.open(sources / f"progressistad-{__version__}.tar.gz", "w:gz") as tar:
        tar.add(str(REPO), arcname=f"progressistad-{__version__}", filter=_source_filter)
    result = subprocess.run(
        [tool, *args, "--define", f"_topdir {tmp_path / 'top'}", "--define", f"_sourcedir {sources}",
         str(SPEC)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_rpmbuild_builds_the_source_rpm(tmp_path):
    rpmbuild(tmp_path, "-bs", *DEFINES, "--define", f"_srcrpmdir {tmp_path}")
    srpm = tmp_path / f"progressistad-{__version__}-1.src.rpm"
    assert srpm.exists(), result.stdout
    contents = subprocess.run(["rpm", "-qpl", str(srpm)], capture_output=True, text=True, check=True).stdout
    assert contents.split() == [f"progressistad-{__version__}.tar.gz", "progressistad.spec"]


def rpm_query(package: Path, *args: str) -> list:
    result = subprocess.run(["rpm", "-qp", *args, str(package)], capture_output=True, text=True,
                            check=True)
    return result.stdout.split("\n")[:-1]


def test_rpmbuild_builds_the_noarch_package_the_spec_describes(tmp_path):
    """Fedora's macros are stood in for (rpm_standins/macros) and Build/Requires cannot be
    checked against Debian's packages (--nodeps); the payload is checked against the spec."""
    for module, package in (("build", "python3-build"), ("installer", "python3-installer"),
                            ("tornado", "python3-tornado")):
        require_system_python_module(module, package)
    rpmbuild(tmp_path, "-bb", "--nodeps", "--define", f"standins {STANDINS}", "--load",
             str(STANDINS / "macros"), "--define", f"_rpmdir {tmp_path / 'rpms'}")
    (package,) = (tmp_path / "rpms" / "noarch").glob("*.rpm")
    assert package.name == f"progressistad-{__version__}-1.noarch.rpm"
    payload = set(rpm_query(package, "-l"))
    sitelib = next(path.rsplit("/progressistad/", 1)[0] for path in payload
                   if path.endswith("/progressistad/__init__.py"))
    assert sitelib.startswith("/usr/lib/python3.") and sitelib.endswith("/site-packages")

    listed = [line.split()[-1] for line in spec_files(sitelib)]
    for pattern in listed:
        assert any(fnmatch.fnmatch(path, pattern.rstrip("/")) for path in payload), pattern
    for unit in ("progressistad.service", "progressistad.socket", "progressistad-activated.service"):
        assert f"/usr/lib/systemd/system/{unit}" in payload
    for path in ("/usr/bin/progressistad", "/usr/bin/progressista",
                 f"{sitelib}/progressistad/daemon/main.py", f"{sitelib}/progressistad/static/index.html",
                 f"{sitelib}/progressistad-{__version__}.dist-info/METADATA"):
        assert path in payload, path
    assert rpm_query(package, "-c") == ["/etc/progressista/notify.conf",
                                        "/etc/progressista/progressistad.conf"]
    assert rpm_query(package, "--qf", "%{ARCH}\n") == ["noarch"]
    assert "/usr/bin/kill" in rpm_query(package, "-R"), "ExecReload= calls /bin/kill"
    archive = subprocess.run([require_tool("rpm2archive"), "-"], stdin=package.open("rb"),
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        def read(path: str) -> str:
            return tar.extractfile("." + path).read().decode()

        for unit in ("progressistad.service", "progressistad.socket", "progressistad-activated.service"):
            assert read(f"/usr/lib/systemd/system/{unit}") == (REPO / "systemd" / unit).read_text()
        assert read("/usr/bin/progressistad").startswith("#!/usr/bin/python3\n")


def spec_files(sitelib: str) -> list:
    """The path lines of the spec's %files, as rpmspec expands them here (%license, %doc left out)."""
    parsed = rpmspec("-P", "--define", f"python3_sitelib {sitelib}")
    section = parsed.split("\n%files", 1)[1].split("\n%changelog", 1)[0]
    return [line for line in section.splitlines()[1:]
            if line.startswith(("/", "%config", "%dir")) and "%license" not in line]
