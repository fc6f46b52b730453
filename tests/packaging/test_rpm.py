"""The RPM spec: Fedora's macros can't run on Debian, so parse it and build the source RPM."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from progressistad import __version__
from tests.support import REPO, require_tool

pytestmark = pytest.mark.packaging

SPEC = REPO / "packaging" / "rpm" / "progressistad.spec"
# Stand-ins for systemd-rpm-macros, which Debian's rpm lacks, so %files can be read.
DEFINES = ["--define", "_unitdir /usr/lib/systemd/system"]
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
    for unit in ("progressistad.service", "progressistad.socket", "progressistad-activated.service"):
        assert f"/usr/lib/systemd/system/{unit}\n" in parsed
        assert (REPO / "systemd" / unit).exists()
    assert "/usr/share/man/man8/progressistad.8*" in parsed


def _source_filter(info: tarfile.TarInfo):
    parts = Path(info.name).parts[1:]
    if any(p in SKIPPED or p.startswith(".venv") or p.endswith(".egg-info") for p in parts):
        return None
    return info


def test_rpmbuild_builds_the_source_rpm(tmp_path):
    rpmbuild = require_tool("rpmbuild")
    sources = tmp_path / "SOURCES"
    sources.mkdir()
    with tarfile.open(sources / f"progressistad-{__version__}.tar.gz", "w:gz") as tar:
        tar.add(str(REPO), arcname=f"progressistad-{__version__}", filter=_source_filter)
    result = subprocess.run(
        [rpmbuild, "-bs", *DEFINES, "--define", f"_topdir {tmp_path / 'top'}",
         "--define", f"_sourcedir {sources}", "--define", f"_srcrpmdir {tmp_path}", str(SPEC)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    srpm = tmp_path / f"progressistad-{__version__}-1.src.rpm"
    assert srpm.exists(), result.stdout
    contents = subprocess.run(["rpm", "-qpl", str(srpm)], capture_output=True, text=True, check=True).stdout
    assert contents.split() == [f"progressistad-{__version__}.tar.gz", "progressistad.spec"]
