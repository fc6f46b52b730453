"""Fixtures for the packaging tests: the .deb, built once per session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import REPO, require_tool


@pytest.fixture(scope="session")
def built_deb(tmp_path_factory) -> Path:
    """progressistad_<version>_all.deb built by packaging/build-deb.sh from this tree."""
    for tool in ("dpkg-buildpackage", "dh", "dpkg-parsechangelog", "fakeroot"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(["bash", str(REPO / "packaging" / "build-deb.sh"), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])
