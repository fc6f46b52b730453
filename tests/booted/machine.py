"""A minimal Debian root booted by systemd-nspawn: made by mmdebstrap, driven through its PID 1."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tests.support import REPO, free_port, wait_for

RELEASES = ("bookworm", "trixie")
"""Debian 12 and Debian 13."""
ROOT_PACKAGES = ("systemd", "dbus")
CACHE = REPO / "build" / "booted"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
INSIDE_ENV = ("env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
              "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=cat", "DEBIAN_FRONTEND=noninteractive")
"""The host's environment (pyenv, pip, CI variables) stays out of the container."""
BOOT_TIMEOUT = 120.0
# systemd-nspawn removes its mount propagation directory on exit and refuses to
# when /run/systemd/nspawn is not a temporary file system (hosts, containers or CI
# runners whose /run is a plain directory): a tmpfs there, in a mount namespace of
# the container's own, satisfies it and leaves the host's /run alone.
NSPAWN_WRAPPER = ('mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn '
                  '&& exec "$@"')


def debian_mirror(sources: Sequence[Path] = APT_SOURCES) -> str:
    """The Debian archive this host's apt uses (its main archive, not the security one)."""
    files: List[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list"))
        else:
            files.append(source)
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^(?:URIs:|deb(?:\s+\[[^\]]*\])?)\s+(\S+)", text, re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def root_tarball(release: str, mirror: str) -> Path:
    """A minbase root of `release` with systemd, as a tarball kept for the day under build/booted/."""
    day = time.strftime("%Y%m%d", time.gmtime())
    target = CACHE / f"{release}-minbase-{'-'.join(ROOT_PACKAGES)}-{day}.tar"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{release}-*.tar"):
        old.unlink()
    partial = CACHE / f"{release}.partial.{os.getpid()}.tar"
    # The package lists stay: `apt install ./progressistad_*.deb` resolves its
    # dependencies from them, as on an installed system.
    command = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(ROOT_PACKAGES),
               "--skip=cleanup/apt/lists", release, str(partial), mirror]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    os.replace(partial, target)
    return target


class Machine:
    """One booted root: runs commands in it through nsenter into its PID 1, reads its files."""

    def __init__(self, release: str, root: Path, console_log: Path) -> None:
        self.release = release
        self.root = root
        self.console_log = console_log
        self.name = f"progressistad-{release}-{os.getpid()}"
        self.proc: Optional[subprocess.Popen] = None
        self.leader = 0

    def boot(self, nspawn: str) -> None:
        """Boot the root (sharing the host's network) and wait until its systemd is up."""
        command = [nspawn, "--boot", "--directory", str(self.root), "--machine", self.name,
                   # No machined or system bus is needed on the host.
                   "--register=no", "--keep-unit", "--link-journal=no", "--console=passive",
                   # PrivateNetwork= of the socket-activated unit needs it to take effect.
                   "--capability=CAP_NET_ADMIN"]
        with open(self.console_log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", NSPAWN_WRAPPER,
                 "sh", *command], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.leader = wait_for(self._leader, timeout=BOOT_TIMEOUT, interval=0.1,
                               message=f"the container's systemd ({self.console_log})")
        wait_for(self._system_running, timeout=BOOT_TIMEOUT, interval=0.2,
                 message=f"{self.release} to finish booting")

    def _leader(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.proc.returncode}:\n"
                                 f"{self.console_log.read_text(errors='replace')[-3000:]}")
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            for child in children:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
        except OSError:
            pass
        return 0

    def _system_running(self) -> bool:
        self._leader()  # fails at once if the container died
        state = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=60)
        return state.stdout.strip() in ("running", "degraded")

    def shutdown(self, timeout: float = 60.0) -> None:
        """Power the container off (nspawn passes SIGTERM on as a clean shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def run(self, args: Sequence[str], check: bool = True, timeout: float = 120.0,
            stdin: Optional[int] = subprocess.DEVNULL) -> subprocess.CompletedProcess:
        """`args` inside the container, as root, with a clean environment and no input."""
        command = ["nsenter", "--target", str(self.leader), "--all", "--", *INSIDE_ENV, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited with {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(["systemctl", "--no-pager", *args], check=check)

    def show(self, unit: str, *properties: str) -> Dict[str, str]:
        """Unit properties from `systemctl show`."""
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def main_pid(self, unit: str = "progressistad.service") -> int:
        return int(self.show(unit, "MainPID")["MainPID"])

    def daemon_reload(self) -> None:
        self.systemctl("daemon-reload")

    def cursor(self) -> str:
        """The journal's position now: `journal(after=...)` reads what comes after it."""
        out = self.run(["journalctl", "--no-pager", "-n", "1", "-o", "json"]).stdout
        return json.loads(out.splitlines()[-1])["__CURSOR"] if out.strip() else ""

    def journal(self, unit: str = "progressistad.service", after: str = "") -> List[dict]:
        """The unit's journal entries (systemd's and the daemon's), as journalctl's JSON."""
        args = ["journalctl", "--no-pager", "-o", "json", "-u", unit]
        if after:
            args += ["--after-cursor", after]
        return [json.loads(line) for line in self.run(args).stdout.splitlines() if line.strip()]

    def path(self, inside: str) -> Path:
        """The host's path of a file inside the container."""
        return self.root / inside.lstrip("/")

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chmod(target, mode)

    def diagnose(self, units: str = "progressistad*") -> str:
        """What to read when a step fails: the units' status and the journal's end."""
        status = self.systemctl("status", units, check=False).stdout
        journal = self.run(["journalctl", "--no-pager", "-n", "40"], check=False).stdout
        return f"\n--- systemctl status {units}\n{status}\n--- journal\n{journal}"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Booted:
    """The machine of one release, and what the steps share: the package, the ports, the token."""

    def __init__(self, machine: Machine, deb: str) -> None:
        self.machine = machine
        self.deb = deb
        self.port = free_port()
        self.socket_port = free_port()
        self.token: Optional[str] = None
        """The token the operator put in the conffile, once there is one."""


def listening_addresses(port: int) -> List[str]:
    """Local addresses with a listening TCP socket on `port` (the container shares this network)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:
                found.append(_address(address))
    return found


def _address(hexaddress: str) -> str:
    """/proc/net/tcp's address: 32-bit words in the host's (little-endian) byte order."""
    raw = bytes.fromhex(hexaddress)
    return str(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))
