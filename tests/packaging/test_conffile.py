"""packaging/progressistad.conf: every option shown commented out with its real default; only host
and stale-factor set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from progressistad.daemon.config import OPTIONS, OPTIONS_BY_NAME, RELOADABLE_FIELDS
from tests.support import REPO

pytestmark = pytest.mark.packaging

CONFFILE = REPO / "packaging" / "progressistad.conf"
NOT_FILE_KEYS = {"help", "version", "print-config", "config", "import-state"}
TOKEN_KEYS = {"api-token", "api-tokens", "read-tokens"}
"""Shown as (set, redacted) or (unset) by --print-config, not as values."""
COMMENTED_OPTION = re.compile(r"^#([a-z][a-z-]*) =(.*)$")


def daemon(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    env.update(PROGRESSISTA_CONFIG="", PROGRESSISTA_NOTIFY_CONFIG="", COLUMNS="500")
    result = subprocess.run([sys.executable, "-m", "progressistad", *args], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def effective(print_config: str) -> Dict[str, str]:
    """key -> value of `--print-config` output, sources left out."""
    values = {}
    for line in print_config.splitlines():
        if line.startswith("#") or " = " not in line:
            continue
        key, _, rest = line.partition(" = ")
        values[key] = rest.split("  #")[0].strip()
    return values


def commented_options() -> Dict[str, str]:
    lines = CONFFILE.read_text().splitlines()
    return {m.group(1): m.group(2).strip() for m in map(COMMENTED_OPTION.match, lines) if m}


def test_every_option_has_a_commented_line():
    options = set(re.findall(r"(?<![\w-])--([a-z][a-z-]*)", daemon("--help"))) - NOT_FILE_KEYS
    assert "port" in options
    assert sorted(options - set(commented_options())) == []


def test_only_host_to_loopback_and_the_adaptive_stale_factor_are_set():
    active = [line for line in CONFFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert active == ["host = 127.0.0.1", "stale-factor = 10"]
    listening = effective(daemon("--config", str(CONFFILE), "--print-config"))
    assert (listening["host"], listening["port"]) == ("127.0.0.1", "8000")
    assert listening["stale-factor"] == "10"


def test_the_defaults_shown_are_the_daemons_defaults(tmp_path: Path):
    uncommented = tmp_path / "progressistad.conf"
    uncommented.write_text("".join(f"{key} = {value}\n" for key, value in commented_options().items()))
    from_file = effective(daemon("--config", str(uncommented), "--print-config"))
    built_in = effective(daemon("--print-config"))
    assert set(from_file) == set(built_in)
    for key in set(built_in) - TOKEN_KEYS:
        assert from_file[key] == built_in[key], key


def commented_keys_with_reload_marks() -> List[Tuple[str, bool]]:
    """Each `#key = value` line's key, and whether its comment or section says (reload)."""
    keys, comment, section_reloads = [], "", False
    for line in CONFFILE.read_text().splitlines():
        option = COMMENTED_OPTION.match(line)
        if line.startswith("# ---"):
            section_reloads, comment = "(all reload)" in line, ""
        elif option:
            keys.append((option.group(1), section_reloads or "(reload)" in comment))
        elif line.startswith("#"):
            comment += line
        else:
            comment = ""
    return keys


def test_each_option_is_listed_once_and_every_key_is_an_option():
    keys = [key for key, _ in commented_keys_with_reload_marks()]
    assert sorted(keys) == sorted(set(keys))
    assert sorted(set(keys) - set(OPTIONS_BY_NAME)) == []


def test_the_reload_marks_are_what_sighup_reloads():
    marked = {key for key, reloads in commented_keys_with_reload_marks() if reloads}
    reloadable = {option.name for option in OPTIONS
                  if option.field in RELOADABLE_FIELDS or option.name in TOKEN_KEYS}
    assert marked == reloadable


def test_every_variable_named_is_an_options():
    variables = {option.env_var for option in OPTIONS}
    named = set(re.findall(r"\bPROGRESSISTA_[A-Z_]*[A-Z]\b", CONFFILE.read_text()))
    assert named and named <= variables
