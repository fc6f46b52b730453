"""man/progressista.1: lint-clean and naming every subcommand and option of the parser."""

from __future__ import annotations

import os
import subprocess

from progressistad.client.cli import build_parser
from tests.support import REPO, require_tool

PAGE = REPO / "man" / "progressista.1"


def _quiet(command):
    env = dict(os.environ, MANROFFSEQ="", MANWIDTH="80", LC_ALL="C.UTF-8")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    return done.returncode, (done.stdout if "-Tlint" in command else "") + done.stderr


def test_man_page_is_lint_clean():
    for tool, command in (("mandoc", ["mandoc", "-Tlint", "-W", "all", str(PAGE)]),
                          ("groff", ["groff", "-man", "-ww", "-z", str(PAGE)]),
                          ("man", ["man", "--warnings", "-l", str(PAGE)])):
        require_tool(tool)
        status, output = _quiet(command)
        if tool == "man":
            output = output.strip()
        assert status == 0 and output == "", f"{tool}: {output}"


def test_man_page_names_every_subcommand_and_option():
    text = PAGE.read_text().replace("\\-", "-")
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subparsers.items():
        assert f".B {name}" in text or f"B progressista {name}" in text, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in text, f"{name} {flag}"
    for variable in ("PROGRESSISTA_SERVER_URL", "PROGRESSISTA_API_TOKEN",
                     "PROGRESSISTA_PUSH_INTERVAL", "PROGRESSISTA_REQUEST_TIMEOUT"):
        assert variable in text
