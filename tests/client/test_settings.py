"""Client settings and event shaping: no sockets."""

from __future__ import annotations

import math

import pytest

from progressistad import contract
from progressistad.client.events import make_event, task_id_for
from progressistad.client.settings import ClientSettings, base_url, progress_url, safe_url


@pytest.mark.parametrize("given, expected", [
    ("http://h:8000/progress", "http://h:8000/progress"),
    ("http://h:8000", "http://h:8000/progress"),
    ("http://h:8000/", "http://h:8000/progress"),
    ("https://h/prefix/", "https://h/prefix/progress"),
    ("https://h/prefix/progress?token=t", "https://h/prefix/progress?token=t"),
])
def test_progress_url_accepts_base_or_progress_url(given, expected):
    assert progress_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://h/", "http://", ""])
def test_progress_url_refuses_what_is_not_an_http_url(bad):
    with pytest.raises(ValueError, match="server URL"):
        progress_url(bad)


def test_base_url_and_safe_url():
    assert base_url("http://h:1/x/progress?token=t") == "http://h:1/x"
    assert base_url("http://h:1") == "http://h:1"
    assert safe_url("http://user:pw@h:1/progress?token=secret") == "http://h:1/progress"


def test_settings_from_env_with_defaults_and_bad_values():
    assert ClientSettings.from_env({}) == ClientSettings()
    assert ClientSettings().server_url == "http://localhost:8000/progress"
    settings = ClientSettings.from_env({
        "PROGRESSISTA_SERVER_URL": "http://d:9", "PROGRESSISTA_PUSH_INTERVAL": "0.5",
        "PROGRESSISTA_REQUEST_TIMEOUT": "nan", "PROGRESSISTA_API_TOKEN": "t"})
    assert settings == ClientSettings("http://d:9/progress", 0.5, 2.0, "t")
    assert ClientSettings.from_env({"PROGRESSISTA_PUSH_INTERVAL": "-1"}).push_interval == 0.25


def test_events_fit_the_wire_limits_whatever_the_bar_holds():
    event = make_event("t", "update", (math.inf, math.nan, "d" * 5000, "u" * 100, None, None), now=1.0)
    assert event == {"task_id": "t", "status": "update", "n": 0, "total": None,
                     "desc": "d" * contract.DESC_MAX_CHARS, "unit": "u" * contract.UNIT_MAX_CHARS,
                     "timestamp": 1.0}
    assert make_event("t", "close", (2.5, 10.0, None, None, None, None), {"a": 1}, now=1.0) == {
        "task_id": "t", "status": "close", "n": 2.5, "total": 10, "desc": "", "timestamp": 1.0,
        "meta": {"a": 1}}
    assert make_event("t", "update", (-3, 0, "", "", "", {}), now=1.0)["total"] == 0


def test_task_ids_lose_control_characters_and_excess_length():
    assert task_id_for("a\nb\x00") == "a_b_"
    assert len(task_id_for("x" * 1000)) == contract.TASK_ID_MAX_CHARS


def test_the_client_imports_only_the_standard_library_and_tqdm():
    import subprocess
    import sys

    code = ("import sys; import progressistad.client.cli, progressistad.client.admin;"
            "progressistad.client.cli.build_parser(); print('tqdm' in sys.modules);"
            "import progressistad.client.patch; from progressistad.client import RemoteTqdm;"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tornado', 'marshmallow', 'configargparse', 'sdnotify', 'requests', 'tqdm'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["False", "['tqdm']"]
