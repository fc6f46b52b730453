"""Man pages: every option of --help documented, and silent under mandoc, groff and man."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from progressistad import __version__
from tests.support import REPO, require_tool

pytestmark = pytest.mark.packaging

DAEMON_PAGE = REPO / "man" / "progressistad.8"
CLIENT_PAGE = REPO / "man" / "progressista.1"
PAGES = [DAEMON_PAGE, CLIENT_PAGE]
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES",
            "SIGNALS", "EXAMPLES", "SEE ALSO")
LINT_ENV = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
NOT_SETTINGS = {"--help", "--version", "--print-config", "--import-state"}


def page_text(path: Path) -> str:
    """The page source with roff's escaped hyphens and font changes made plain."""
    text = path.read_text().replace("\\-", "-")
    return re.sub(r"\\f[BIRP]", "", text)


def daemon_help() -> str:
    result = subprocess.run([sys.executable, "-m", "progressistad", "--help"], capture_output=True,
                            text=True, timeout=60,
                            env=dict(os.environ, PROGRESSISTA_CONFIG="", COLUMNS="500"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_daemon_page_has_the_sections_in_order():
    lines = DAEMON_PAGE.read_text().splitlines()
    headings = [line[4:].strip('"') for line in lines if line.startswith(".SH ")]
    assert headings == list(SECTIONS)


def test_daemon_page_names_this_version():
    assert f'"progressistad {__version__}"' in DAEMON_PAGE.read_text().splitlines()[0]


def help_options() -> set:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", daemon_help()))


def test_every_option_of_help_is_in_the_daemon_page():
    options = help_options()
    assert "--port" in options and "--storage-path" in options
    text = page_text(DAEMON_PAGE)
    missing = sorted(option for option in options if not re.search(re.escape(option) + r"(?![\w-])", text))
    assert missing == []


def test_every_option_has_its_environment_variable_in_the_daemon_page():
    variables = {"PROGRESSISTA_" + option[2:].replace("-", "_").upper()
                 for option in help_options() - NOT_SETTINGS}
    variables |= set(re.findall(r"\bPROGRESSISTA_[A-Z_]+[A-Z]\b", daemon_help()))
    assert "PROGRESSISTA_PORT" in variables
    text = page_text(DAEMON_PAGE)
    assert sorted(v for v in variables if v not in text) == []


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Run a man page tool (failing under CI=true when it is missing) in the lint locale."""
    return subprocess.run([require_tool(tool), *args], capture_output=True, text=True,
                          timeout=60, env=LINT_ENV)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_mandoc_lint_is_silent(page):
    result = run_tool("mandoc", "-Tlint", "-W", "all", str(page))
    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_groff_warns_about_nothing(page):
    result = run_tool("groff", "-man", "-ww", "-z", str(page))
    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_warnings_are_silent(page):
    result = run_tool("man", "--warnings", "-l", str(page))
    assert result.stderr == ""
    assert result.returncode == 0
    assert "progressista" in result.stdout
