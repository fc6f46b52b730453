"""packaging/notify.conf: the packaged route file sets no route, and every example in it, once
uncommented, is a route the daemon takes."""

from __future__ import annotations

import importlib.util
import re

import pytest

from progressistad.alerts import routes
from tests.support import REPO

pytestmark = pytest.mark.packaging

EXAMPLE = REPO / "packaging" / "notify.conf"
SECRET_FILES = {
    "ntfy-token": "tk_example",
    "ops-hook-token": "hook-token",
    "slack-webhook-url": "slack+https://hooks.slack.com/services/T000/B000/XXXX",
    "discord-webhook-url": "discord+https://discord.com/api/webhooks/1/abc",
    "smtp-password": "pw",
    "telegram-url": "tgram://123456789:ABCdefGhIJKlmNoPQRsTUVwxyZ/12345",
}
COMMENTED = re.compile(r"^#(\[[a-z-]+\]|[a-z-]+ = .*)$")
"""A commented-out section header or key (a single #); ## lines explain them."""


def test_the_packaged_file_sets_no_route():
    assert routes.load(str(EXAMPLE), {}).routes == ()
    assert not [line for line in EXAMPLE.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(("#", ";"))]


def test_every_example_uncommented_is_a_route_the_daemon_takes(tmp_path):
    for name, value in SECRET_FILES.items():
        (tmp_path / name).write_text(value + "\n")
    lines = [line[1:] if COMMENTED.match(line) else line
             for line in EXAMPLE.read_text().splitlines()]
    text = "\n".join(lines) + "\n"
    expected = ["phone", "ops-hook", "slack", "discord", "mail", "telegram"]
    if importlib.util.find_spec("apprise") is None:
        text = text.split("[telegram]")[0]
        expected.remove("telegram")
    path = tmp_path / "notify.conf"
    path.write_text(text)
    config = routes.load(str(path), {})
    assert [route.name for route in config.routes] == expected
    phone = config.get("phone")
    assert (phone.token, phone.priority, phone.tags, phone.min_duration) == \
        ("tk_example", "high", ("warning", "robot"), 60.0)
    assert config.smtp.username == "progressista" and config.smtp.password == "pw"
    assert config.get("slack").sink == routes.SLACK and config.get("discord").sink == routes.DISCORD
