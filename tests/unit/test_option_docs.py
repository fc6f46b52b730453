"""The option tables of README.md and the man page are what docs/option_tables.py writes from
the parser, so that --help, the README and the man page say one thing."""

import re
import sys

import pytest

from progressistad.daemon import config
from tests.support import REPO

sys.path.insert(0, str(REPO / "docs"))

import option_tables  # noqa: E402


@pytest.mark.parametrize("path", [option_tables.README, option_tables.DAEMON_PAGE],
                         ids=lambda path: path.name)
def test_the_committed_tables_are_the_parsers(path):
    assert path.read_text() == dict(option_tables.written())[path], \
        f"run python {option_tables.WRITER}"


def readme_rows():
    readme = (REPO / "README.md").read_text()
    begin, end = option_tables.README_BLOCK
    table = readme.split(begin)[1].split(end)[0]
    return re.findall(r"^\| `(--[a-z-]+|-h)", table, re.M)


def test_the_readme_names_each_option_of_the_parser_once():
    flags = [action.option_strings[0] for action in config.build_parser()._actions]
    assert readme_rows() == flags and len(set(flags)) == len(flags)
    for name in ("--redis-url", "--redis-prefix", "--redis-wait", "--import-state"):
        assert readme_rows().count(name) == 1


TOKEN_OPTIONS = {"api-token", "api-tokens", "read-tokens"}
"""Options without a Settings field of their own: they feed the tokens, which SIGHUP reloads."""


def man_entries():
    """(option name, entry text) of each entry of the man page's OPTIONS block."""
    page = (REPO / "man" / "progressistad.8").read_text()
    begin, end = option_tables.MAN_OPTIONS_BLOCK
    entries = page.split(begin)[1].split(end)[0].split(".TP\n")[1:]
    tag = re.compile(r"^\.B[IR]? (?:\\-h \", \" )?\\-\\-((?:[a-z]|\\-)+)")
    return [(tag.match(entry).group(1).replace("\\-", "-"), entry) for entry in entries]


def test_the_man_page_names_each_option_of_the_parser_once():
    names = [name for name, _ in man_entries()]
    assert names == [action.option_strings[-1][2:] for action in config.build_parser()._actions]


def test_the_man_page_marks_what_sighup_reloads():
    reloaded = {name for name, entry in man_entries() if ".I (reload)" in entry}
    assert reloaded == {option.name for option in config.OPTIONS
                        if option.field in config.RELOADABLE_FIELDS} | TOKEN_OPTIONS
