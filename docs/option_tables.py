"""The option tables of README.md and man/progressistad.8, written from the daemon's parser.

    python docs/option_tables.py           rewrite them after a change of an option or its help
    python docs/option_tables.py --check   exit 1, naming the file, when one differs from the parser

The help texts live in progressistad/daemon/config.py, once: `--help`, the README and the
man page all say what they say. The conffile (packaging/progressistad.conf) is written by
hand, in sections, and tests/packaging/test_conffile.py holds it to the parser.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from progressistad.daemon import config  # noqa: E402

README = REPO / "README.md"
DAEMON_PAGE = REPO / "man" / "progressistad.8"
WRITER = "docs/option_tables.py"
README_BLOCK = (f"<!-- options: {WRITER} writes this table from the parser's help texts -->\n",
                "<!-- end of options -->\n")
MAN_OPTIONS_BLOCK = (f'.\\" options: {WRITER} writes these entries from the parser\'s help texts\n',
                     '.\\" end of options\n')
MAN_VARIABLES_BLOCK = (f'.\\" variables: {WRITER} writes this list from the parser\n',
                       '.\\" end of variables\n')
FLAG = re.compile(r"(?<![\w`-])(--[a-z][a-z-]*)")
ENV_SUFFIX = re.compile(r" \[env [A-Z_]+\]")
PROSE = re.compile(r"^\(?[A-Za-z][a-z]*(?:-[a-z]+)+[,;:.)]*$")
"""A hyphenated word (read-write), whose hyphen roff may show as one; names keep a minus."""
MAN_WIDTH = 78
"""Longest text line of the generated page source (mandoc's style check wants at most 80)."""
TOKEN_FIELDS = ("api_tokens", "read_tokens")
"""What an option without a Settings field feeds (`Option.field`)."""


class Row(NamedTuple):
    """One option of the parser, as the documents show it."""

    flags: Tuple[str, ...]
    metavar: Optional[str]
    optional_value: bool
    env_var: Optional[str]
    help: str
    reloads: bool


def rows() -> List[Row]:
    """Every option of `progressistad --help`, in its order."""
    found = []
    for action in config.build_parser()._actions:
        help_text = ENV_SUFFIX.sub("", action.help or "").replace("%%", "%")
        found.append(Row(tuple(action.option_strings), action.metavar, action.nargs == "?",
                         getattr(action, "env_var", None), help_text,
                         _reloads(action.option_strings[-1][2:])))
    return found


def _reloads(name: str) -> bool:
    option = config.OPTIONS_BY_NAME.get(name)
    if option is None:
        return False
    fields = (option.field,) if option.field else TOKEN_FIELDS
    return all(field in config.RELOADABLE_FIELDS for field in fields)


def readme_table(options: Sequence[Row]) -> str:
    lines = ["", "| Flag | Environment variable | Meaning |", "|---|---|---|"]
    for row in options:
        flags = ", ".join(f"`{flag}{_metavar(row, ' {}', ' [{}]')}`" for flag in row.flags)
        env = f"`{row.env_var}`" if row.env_var else ""
        meaning = FLAG.sub(r"`\1`", row.help).replace("|", "\\|")
        lines.append(f"| {flags} | {env} | {meaning} |")
    return "\n".join(lines) + "\n\n"


def _metavar(row: Row, plain: str, optional: str) -> str:
    if not row.metavar:
        return ""
    return (optional if row.optional_value else plain).format(row.metavar)


def man_options(options: Sequence[Row]) -> str:
    lines = []
    for row in options:
        lines += [".TP", _man_tag(row), _roff_lines(_sentence(row.help))]
        if row.reloads:
            lines.append(".I (reload)")
    return "\n".join(lines) + "\n"


def _man_tag(row: Row) -> str:
    flags = [_roff(flag) for flag in row.flags]
    if len(flags) > 1:
        return ".BR " + ' ", " '.join(flags)
    if not row.metavar:
        return ".B " + flags[0]
    metavar = _roff(row.metavar.lower())
    if row.optional_value:
        return f'.BR {flags[0]} " [" \\fI{metavar}\\fR ]'
    return f'.BI {flags[0]} " {metavar}"'


def man_variables(options: Sequence[Row]) -> str:
    names = [row.env_var for row in options if row.env_var and row.flags[0][2:] in config.OPTIONS_BY_NAME]
    lines = [f".BR {name} ," for name in names[:-1]] + [f".BR {names[-1]} ."]
    return "\n".join(lines) + "\n"


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _roff(text: str) -> str:
    return text.replace("-", "\\-")


def _roff_lines(text: str) -> str:
    """`text` as roff text lines: flags in bold, hyphens of names (not of words) unbreakable."""
    text = FLAG.sub(lambda m: "\\fB" + m.group(1) + "\\fR", text.replace("\\", "\\e"))
    text = text.replace("e.g. ", "e.g.\\& ")  # not the end of a sentence
    words = [word if PROSE.match(word) else _roff(word) for word in text.split()]
    lines = [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > MAN_WIDTH:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in lines)


def replace_block(text: str, block: Tuple[str, str], body: str, where: Path) -> str:
    begin, end = block
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"{where}: expected one {begin.strip()!r} ... {end.strip()!r} block")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return head + begin + body + end + tail


def written() -> List[Tuple[Path, str]]:
    """Each document with its option tables as the parser has them."""
    options = rows()
    readme = replace_block(README.read_text(), README_BLOCK, readme_table(options), README)
    page = replace_block(DAEMON_PAGE.read_text(), MAN_OPTIONS_BLOCK, man_options(options), DAEMON_PAGE)
    page = replace_block(page, MAN_VARIABLES_BLOCK, man_variables(options), DAEMON_PAGE)
    return [(README, readme), (DAEMON_PAGE, page)]


def main(argv: Sequence[str]) -> int:
    stale = []
    for path, text in written():
        if path.read_text() != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(text)
    if stale and "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(REPO)} differs from the parser: run python {WRITER}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
