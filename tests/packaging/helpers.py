"""Helpers for the packaging tests: unit files, the system Python, WebSocket reads, root."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import pytest
import tornado.httpclient
import tornado.websocket

from tests.support import IN_CI, REPO, require_tool

SYSTEMD_DIR = REPO / "systemd"
UNITS = ("progressistad.service", "progressistad.socket", "progressistad-activated.service")
SYSTEM_PYTHON = "/usr/bin/python3"
SECCOMP_EXEC = Path(__file__).resolve().parent / "seccomp_exec.py"


def unit_directives(path: Path) -> List[Tuple[str, str, str]]:
    """(section, key, value) for every directive line of a unit file, in order."""
    section = ""
    out = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(path: Path) -> Dict[str, List[str]]:
    """Key -> every value it is given in the unit, whatever the section."""
    values: Dict[str, List[str]] = {}
    for _, key, value in unit_directives(path):
        values.setdefault(key, []).append(value)
    return values


def exec_start_args(path: Path) -> List[str]:
    """The arguments ExecStart= passes after the command."""
    (command,) = unit_values(path)["ExecStart"]
    return command.split()[1:]


def exposure(unit_path: Path) -> float:
    """`systemd-analyze security --offline=true` overall exposure of a unit file."""
    tool = require_tool("systemd-analyze")
    out = subprocess.run([tool, "security", "--offline=true", "--no-pager", str(unit_path)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert match, f"no exposure level in:\n{out.stdout}\n{out.stderr}"
    return float(match.group(1))


def require_root() -> None:
    """Installing packages and making namespaces need root: skip locally without it, fail under CI=true."""
    if os.geteuid() == 0:
        return
    message = "this test installs a .deb or makes a network namespace, which needs root"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_system_python_module(module: str, package: str) -> None:
    """Debian's /usr/bin/python3 can import `module` (from Debian package `package`)."""
    if not os.path.exists(SYSTEM_PYTHON):
        require_tool(SYSTEM_PYTHON)
    probe = subprocess.run([SYSTEM_PYTHON, "-c", f"import {module}"], capture_output=True)
    if probe.returncode != 0:
        message = f"{SYSTEM_PYTHON} lacks {module} (Debian package {package}; make test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def ws_messages(url: str, count: int = 1, origin: Optional[str] = None,
                ca_certs: Optional[str] = None, timeout: float = 15.0,
                headers: Optional[Mapping[str, str]] = None) -> List[dict]:
    """The first `count` JSON messages of a WebSocket; raises the handshake's HTTP error."""

    async def read() -> List[dict]:
        sent = dict(headers or {}, **({"Origin": origin} if origin else {}))
        request = tornado.httpclient.HTTPRequest(url, headers=sent, ca_certs=ca_certs,
                                                 connect_timeout=timeout, request_timeout=timeout)
        connection = await tornado.websocket.websocket_connect(request)
        try:
            messages = []
            for _ in range(count):
                text = await asyncio.wait_for(connection.read_message(), timeout)
                assert text is not None, \
                    f"WebSocket closed: {connection.close_code} {connection.close_reason}"
                messages.append(json.loads(text))
            return messages
        finally:
            connection.close()

    return asyncio.run(read())


def ws_handshake_status(url: str, origin: str, ca_certs: Optional[str] = None,
                        headers: Optional[Mapping[str, str]] = None) -> int:
    """HTTP status of a WebSocket handshake (101 when it upgrades)."""
    try:
        ws_messages(url, 0, origin=origin, ca_certs=ca_certs, headers=headers)
    except tornado.httpclient.HTTPClientError as error:
        return error.code
    return 101

