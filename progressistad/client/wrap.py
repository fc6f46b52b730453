"""`progressista run -- CMD`: any command as one task, its output passed through and its last lines tailed.

The command runs with its stdin, and its stdout and stderr as two pipes whose
bytes are copied unchanged to ours as they come; the task counts the lines
printed and its log tail gets the last of them. A Python program's tqdm bars
report as children of the task (through the start-up shim in `shim/`). The
command's exit status is ours, whatever the daemon does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from progressistad import contract
from progressistad.client import jobs
from progressistad.client.events import task_id_for
from progressistad.client.logqueue import LINES_PER_TASK
from progressistad.client.pipe import write_all
from progressistad.client.remote import RemoteTqdm
from progressistad.client.settings import ENV_JOB, ENV_PARENT_ID

CHUNK = 64 * 1024
KEEPALIVE = 15.0
"""Seconds between reports of a command that prints nothing, so the daemon never takes it for stalled."""
DRAIN_AFTER_EXIT = 2.0
"""How long output is still copied once the command exited: a background child may hold the pipes."""
PARTIAL_MAX = 64 * 1024
"""Bytes without a newline after which they go to the log tail as one (cut) line."""
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
FROM_TERMINAL = (signal.SIGINT, signal.SIGQUIT)
"""Signals a terminal sends to its whole foreground process group, the command included."""
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


def run_command(command: Sequence[str], job: Optional[str], task_id: Optional[str],
                meta: Optional[Mapping[str, Any]], remote: Dict[str, Any],
                env: Mapping[str, str]) -> int:
    """Run `command` as one task reported with `remote` options; `env` is added to its environment."""
    job = job or str((meta or {}).get("job") or jobs.command_job(command))
    task_id = task_id_for(task_id) if task_id else jobs.task_id(job)
    with Forwarder() as forwarder:
        bar = RemoteTqdm(total=None, desc=job, unit="lines", disable=True, task_id=task_id,
                         meta={**(meta or {}), "job": job}, **remote)
        try:
            proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=child_env(task_id, job, env))
        except OSError as error:
            return _not_started(bar, command[0], error)
        forwarder.attach(proc)
        output = Output(bar)
        pumps = [Pump(proc.stdout, sys.stdout, output), Pump(proc.stderr, sys.stderr, output)]
        for pump in pumps:
            pump.start()
        returncode = _wait(proc, bar)
        deadline = time.monotonic() + DRAIN_AFTER_EXIT
        for pump in pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
    status, ending = exit_status(returncode)
    bar._remote_end(contract.CLOSE if returncode == 0 else contract.ERROR, ending)
    return status


def child_env(task_id: str, job: str, extra: Mapping[str, str]) -> Dict[str, str]:
    """The command's environment: ours, `extra`, its parent task and job, the shim first on PYTHONPATH."""
    env = {**os.environ, **extra, ENV_PARENT_ID: task_id, ENV_JOB: job}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = SHIM + (os.pathsep + path if path else "")
    return env


def exit_status(returncode: int) -> Tuple[int, Dict[str, Any]]:
    """Our exit status for the command's return code (128+N after signal N), and the meta saying so."""
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return 128 + number, {"signal": name}
    return returncode, {"exit_status": returncode}


def _not_started(bar: Any, program: str, error: OSError) -> int:
    status = EXIT_NOT_FOUND if isinstance(error, (FileNotFoundError, NotADirectoryError)) \
        else EXIT_NOT_EXECUTABLE
    message = f"progressista run: {program}: {error.strerror or error}"
    print(message, file=sys.stderr, flush=True)
    bar.log(message)
    bar._remote_end(contract.ERROR, {"exit_status": status})
    return status


def _wait(proc: subprocess.Popen, bar: Any) -> int:
    while True:
        try:
            return proc.wait(KEEPALIVE)
        except subprocess.TimeoutExpired:
            bar._remote_touch()


class Forwarder:
    """While the command runs, the signals that would end us go to it, and it decides how to end."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.pending: List[int] = []
        self.previous: Dict[int, Any] = {}

    def __enter__(self) -> "Forwarder":
        for signum in FORWARDED:
            try:
                self.previous[signum] = signal.signal(signum, self.forward)
            except (ValueError, OSError):  # not the main thread: signals stay as they are
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def attach(self, proc: subprocess.Popen) -> None:
        """Forward to `proc` from now on, and what arrived while it was starting."""
        self.proc = proc
        for signum in self.pending:
            self.forward(signum, None)
        self.pending.clear()

    def forward(self, signum: int, frame: Any) -> None:
        if signum in FROM_TERMINAL and _terminal_reached_the_command():
            return
        if self.proc is None:
            self.pending.append(signum)
            return
        try:
            self.proc.send_signal(signum)
        except OSError:  # it has just exited
            pass


def _terminal_reached_the_command() -> bool:
    """Whether our process group (the command's too) is a terminal's foreground: Ctrl-C reached both."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


class Output:
    """What the command printed on both streams: the line count (the task's n) and the log tail."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.lock = threading.Lock()

    def add(self, count: int, lines: List[str]) -> None:
        if count:
            with self.lock:  # both pumps count into one bar
                self.bar.update(count)
        if lines:
            self.bar.log(lines)


class Pump(threading.Thread):
    """Copies one of the command's streams to ours, byte for byte, and feeds its lines to the tail."""

    def __init__(self, source: IO[bytes], sink: IO[Any], output: Output) -> None:
        super().__init__(name="progressista-output", daemon=True)
        self.source = source
        self.sink = sink
        self.output = output
        self.lines = LineTail()

    def run(self) -> None:
        fd = self.source.fileno()
        try:
            while True:
                data = os.read(fd, CHUNK)
                if not data or not self._copy(data):
                    break
                self._tail(data)
            self._tail(None)
        except OSError:
            pass
        finally:
            # Closed early (our output went away), the command meets EPIPE as it would on its own.
            self.source.close()

    def _copy(self, data: bytes) -> bool:
        try:
            write_all(self.sink.fileno(), memoryview(data))
            return True
        except (OSError, ValueError, AttributeError):
            return False

    def _tail(self, data: Optional[bytes]) -> None:
        try:
            self.output.add(*(self.lines.feed(data) if data is not None else self.lines.end()))
        except Exception:  # the tail is a courtesy: never let it stop the copy
            pass


class LineTail:
    """Splits a byte stream into lines, keeping of each chunk only the lines a log tail can show."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, data: bytes) -> Tuple[int, List[str]]:
        """(newlines in `data`, the last complete lines it ends, decoded)."""
        count = data.count(b"\n")
        if not count:
            self.partial += data
            if len(self.partial) <= PARTIAL_MAX:
                return 0, []
            return 0, self.end()[1]
        last = data.rfind(b"\n")
        block, self.partial = self.partial + data[:last], data[last + 1:]
        start = len(block)
        for _ in range(LINES_PER_TASK):
            start = block.rfind(b"\n", 0, start)
            if start < 0:
                break
        return count, _decode(block[start + 1:].split(b"\n"))

    def end(self) -> Tuple[int, List[str]]:
        """The unfinished last line, if any, at the end of the stream."""
        rest, self.partial = self.partial, b""
        return 0, _decode([rest]) if rest else []


def _decode(lines: List[bytes]) -> List[str]:
    return [line.decode("utf-8", "replace") for line in lines]
