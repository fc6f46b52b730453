"""The `progressista` command: `serve` runs the daemon; the other subcommands are the client's.

Only `serve` imports the daemon (tornado and friends): the client subcommands
need nothing beyond the standard library and tqdm.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import runpy
import sys
import traceback
from types import TracebackType
from typing import Any, Dict, List, Optional, Sequence

from progressistad import __version__

DESCRIPTION = "Report progress to a progressistad daemon, or run the daemon."
RUN_USAGE = ("progressista run [options] [-m] TARGET [-- ARGS ...]\n"
             "       progressista run [options] [--job NAME] [--task-id ID] -- CMD [ARGS ...]")
EXIT_UNREACHABLE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand but `serve`, whose options are the daemon's."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("daemon connection")
    group.add_argument("--server-url", metavar="URL",
                       help="the daemon's base URL or its /progress URL "
                            "(env PROGRESSISTA_SERVER_URL; default http://localhost:8000/progress)")
    group.add_argument("--token", metavar="TOKEN",
                       help="API token, sent as Authorization: Bearer (env PROGRESSISTA_API_TOKEN)")
    group.add_argument("--timeout", type=_positive, metavar="SECONDS",
                       help="HTTP request timeout (env PROGRESSISTA_REQUEST_TIMEOUT; default 2)")
    reporting = argparse.ArgumentParser(add_help=False)
    reporting.add_argument("--push-every", type=_positive, metavar="SECONDS",
                           help="seconds between reports (env PROGRESSISTA_PUSH_INTERVAL; default 0.25)")

    parser = argparse.ArgumentParser(prog="progressista", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"progressista {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the progressistad daemon (same options as progressistad)",
                   add_help=False)

    run = sub.add_parser("run", parents=[common, reporting], usage=RUN_USAGE,
                         help="run a Python script or module with every tqdm bar reported, "
                              "or any command (after --) as one task")
    run.add_argument("-m", dest="module", action="store_true", help="TARGET is a module name")
    run.add_argument("--unit", help="default unit for bars that set none")
    run.add_argument("--meta", type=_json_object, metavar="JSON", help="meta object added to every task")
    run.add_argument("--job", metavar="NAME",
                     help="with -- CMD: the task's job (default: the command's basename)")
    run.add_argument("--task-id", metavar="ID",
                     help="with -- CMD: the task's id (default JOB:host:pid)")
    run.add_argument("target", metavar="TARGET", nargs="?", help="script path, or module name with -m")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="arguments for the program (after --); with no TARGET, the command "
                          "and its arguments")

    demo = sub.add_parser("demo", parents=[common, reporting], help="send a few live sample bars")
    demo.add_argument("--seconds", type=_positive, default=30.0, help="how long the demo runs (30)")

    send = sub.add_parser("send", parents=[common], help="send one progress event")
    send.add_argument("task_id", metavar="TASK_ID")
    send.add_argument("--n", type=_number, help="units done so far")
    send.add_argument("--total", type=_number, help="units in all")
    send.add_argument("--desc", help="description")
    send.add_argument("--unit", help="unit name, e.g. files or B")
    send.add_argument("--meta", type=_json_object, metavar="JSON", help="meta object")
    status = send.add_mutually_exclusive_group()
    status.add_argument("--status", choices=("start", "update", "close", "error"), default="update",
                        help="event status (default update)")
    status.add_argument("--start", dest="status", action="store_const", const="start",
                        help="same as --status start")
    status.add_argument("--close", dest="status", action="store_const", const="close",
                        help="mark the task finished")
    status.add_argument("--error", dest="status", action="store_const", const="error",
                        help="mark the task failed")

    pipe = sub.add_parser("pipe", parents=[common, reporting],
                          help="copy stdin to stdout, reporting bytes or lines (like pv)")
    pipe.add_argument("--task-id", help="task id (default pipe:DESC:host:pid:bar-N, its job "
                                        "pipe:DESC)")
    pipe.add_argument("--desc", help="description")
    size = pipe.add_mutually_exclusive_group()
    size.add_argument("--total", type=_number, help="expected bytes (or lines with --lines)")
    size.add_argument("--size-from", metavar="FILE", help="expected bytes: the size of FILE")
    pipe.add_argument("--lines", action="store_true", help="count lines instead of bytes")
    pipe.add_argument("-q", "--quiet", action="store_true", help="no bar on stderr")

    tasks = sub.add_parser("tasks", parents=[common], help="list the daemon's tasks")
    tasks.add_argument("--status", metavar="S[,S...]", help="only tasks with these statuses")
    tasks.add_argument("--json", action="store_true", help="print the JSON as the daemon sends it")

    history = sub.add_parser("history", parents=[common],
                             help="runs of a job, or every job's outcomes and usual duration")
    history.add_argument("job", nargs="?", metavar="JOB",
                         help="this job's runs, newest first; a glob (*, ?, [...]) lists the "
                              "jobs it matches; none lists every job")
    history.add_argument("--limit", type=_count, metavar="N",
                         help="at most N runs or jobs (1 to 1000; the daemon's default 100)")
    history.add_argument("--json", action="store_true",
                         help="print the JSON as the daemon sends it")

    rm = sub.add_parser("rm", parents=[common], help="remove tasks")
    rm.add_argument("task_ids", nargs="*", metavar="TASK_ID")
    rm.add_argument("--status", help="remove every task with this status")
    rm.add_argument("--older-than", type=_number, metavar="SECONDS",
                    help="remove every task idle for longer than this")

    notify = sub.add_parser("notify-test", parents=[common],
                            help="send a test message through one of the daemon's notification "
                                 "routes and say how it went (needs a read-write token)")
    notify.add_argument("route", metavar="ROUTE", help="the route's name in the route file")
    return parser


def _positive(raw: str) -> float:
    value = _number(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {raw!r}")
    return value


def _number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {raw!r}")
    return int(value) if value.is_integer() else value


def _count(raw: str) -> int:
    try:
        value = int(raw, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 1000, got {raw!r}")
    return value


def _json_object(raw: str) -> Dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {raw!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {raw!r}")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        from progressistad.daemon.main import main as serve

        return serve(args[1:])
    parser = build_parser()
    ns = _parse(parser, args)
    if ns.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return COMMANDS[ns.command](ns)
    except CommandError as error:
        print(f"progressista {ns.command}: {error}", file=sys.stderr)
        return error.status


def _parse(parser: argparse.ArgumentParser, args: List[str]) -> argparse.Namespace:
    """The arguments; `ns.wrapped` is CMD for `run [options] -- CMD`, where no TARGET precedes the --."""
    if args[:1] == ["run"] and "--" in args:
        cut = args.index("--")
        ns = parser.parse_args(args[:cut])
        if ns.target is None:
            ns.wrapped = args[cut + 1:]
            return ns
    ns = parser.parse_args(args)
    ns.wrapped = None
    return ns


class CommandError(Exception):
    """A one-line failure for the user, with the exit status."""

    def __init__(self, message: str, status: int = EXIT_UNREACHABLE) -> None:
        super().__init__(message)
        self.status = status


def _settings(ns: argparse.Namespace):
    from progressistad.client.settings import ClientSettings, progress_url

    env = ClientSettings.from_env()
    try:
        url = progress_url(ns.server_url) if ns.server_url else env.server_url
    except ValueError as error:
        raise CommandError(f"--server-url: {error}", EXIT_USAGE) from None
    token = ns.token if ns.token is not None else env.api_token
    timeout = ns.timeout or env.request_timeout
    return url, token, timeout


def _daemon(ns: argparse.Namespace):
    from progressistad.client.admin import Daemon

    url, token, timeout = _settings(ns)
    return Daemon(url, token, timeout)


def _call(fn, *args: Any) -> Any:
    from progressistad.client.admin import DaemonError

    try:
        return fn(*args)
    except DaemonError as error:
        raise CommandError(str(error)) from None


def _remote_options(ns: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for RemoteTqdm from the connection flags."""
    from progressistad.client.settings import auth_headers

    url, token, timeout = _settings(ns)
    options: Dict[str, Any] = {"server_url": url, "request_timeout": timeout,
                               "headers": auth_headers(token)}
    if getattr(ns, "push_every", None):
        options["push_every"] = ns.push_every
    return options


def cmd_run(ns: argparse.Namespace) -> int:
    """Run a script or module as __main__ with the tqdm patch installed; its exit status."""
    if ns.wrapped is not None:
        return cmd_wrap(ns)
    from progressistad.client import patch

    if ns.target is None:
        raise CommandError("name a script (or -m MODULE), or a command after --", EXIT_USAGE)
    if ns.job is not None or ns.task_id is not None:
        raise CommandError("--job and --task-id go with a command after --, e.g. "
                           "progressista run --job NAME -- CMD", EXIT_USAGE)
    defaults = _remote_options(ns)
    if ns.unit:
        defaults["unit"] = ns.unit
    if ns.meta:
        defaults["meta"] = ns.meta
    patch.install(**defaults)
    program_args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    return _run_main(ns.target, program_args, ns.module)


def cmd_wrap(ns: argparse.Namespace) -> int:
    """Run any command as one task; its exit status, whether or not the daemon can be reached."""
    from progressistad.client.settings import (ENV_API_TOKEN, ENV_PUSH_INTERVAL, ENV_REQUEST_TIMEOUT,
                                               ENV_SERVER_URL, auth_headers)
    from progressistad.client.wrap import run_command

    if not ns.wrapped:
        raise CommandError("name the command to run after --", EXIT_USAGE)
    if ns.module or ns.unit:
        raise CommandError("-m and --unit go with a Python TARGET, not with a command after --",
                           EXIT_USAGE)
    # Unchecked: a bad URL or token is reported by the bars, and the command runs all the same.
    remote = {"server_url": ns.server_url, "request_timeout": ns.timeout,
              "push_every": ns.push_every, "headers": auth_headers(ns.token)}
    given = ((ENV_SERVER_URL, ns.server_url), (ENV_API_TOKEN, ns.token),
             (ENV_REQUEST_TIMEOUT, ns.timeout), (ENV_PUSH_INTERVAL, ns.push_every))
    env = {name: str(value) for name, value in given if value is not None}
    return run_command(ns.wrapped, ns.job, ns.task_id, ns.meta, remote, env)


def _run_main(target: str, args: List[str], module: bool) -> int:
    if module and not _module_exists(target):
        raise CommandError(f"no module named {target!r}", EXIT_USAGE)
    if not module and not os.path.exists(target):
        raise CommandError(f"no such script: {target}", EXIT_USAGE)
    sys.argv = [target] + list(args)
    if not module:
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # reported as Python would, without this command's frames
        traceback.print_exception(type(error), error, _program_frames(error.__traceback__))
        return 1
    return 0


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _program_frames(tb: Optional[TracebackType]) -> Optional[TracebackType]:
    """The traceback from the first frame that is neither this module nor runpy."""
    while tb is not None and _is_launcher(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _is_launcher(filename: str) -> bool:
    return filename in (__file__, runpy.__file__) or filename.startswith("<frozen runpy")


def _exit_status(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def cmd_demo(ns: argparse.Namespace) -> int:
    from progressistad.client.demo import run_demo

    _call(_daemon(ns).call, "GET", "/health")
    return run_demo(ns.seconds, _remote_options(ns))


def cmd_send(ns: argparse.Namespace) -> int:
    event: Dict[str, Any] = {"task_id": ns.task_id, "status": ns.status}
    for field in ("n", "total", "desc", "unit", "meta"):
        value = getattr(ns, field)
        if value is not None:
            event[field] = value
    _call(_daemon(ns).send, event)
    return 0


def cmd_pipe(ns: argparse.Namespace) -> int:
    from progressistad.client.pipe import run_pipe, size_of

    total = ns.total
    if ns.size_from:
        try:
            total = size_of(ns.size_from)
        except OSError as error:
            raise CommandError(f"--size-from {ns.size_from}: {error.strerror}", EXIT_USAGE) from None
    return run_pipe(ns.task_id, ns.desc, total, ns.lines, ns.quiet, _remote_options(ns))


def cmd_tasks(ns: argparse.Namespace) -> int:
    from progressistad.client.admin import task_table

    tasks = _call(_daemon(ns).tasks, ns.status)
    if ns.json:
        print(json.dumps({"tasks": tasks}, indent=2, sort_keys=True))
    else:
        sys.stdout.write(task_table(tasks))
    return 0


def cmd_history(ns: argparse.Namespace) -> int:
    from progressistad.client.admin import job_table, run_table

    daemon = _daemon(ns)
    listing = ns.job is None or any(char in ns.job for char in "*?[")
    if listing:
        answer = _call(daemon.jobs, ns.job, ns.limit)
    else:
        answer = _call(daemon.runs, ns.job, ns.limit)
    if ns.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    if listing:
        sys.stdout.write(job_table(answer["jobs"]) if answer["jobs"] else "no runs recorded\n")
    else:
        sys.stdout.write(run_table(answer["runs"]) if answer["runs"]
                         else f"no runs of {ns.job!r} recorded\n")
    if answer["next"] is not None:
        print("(more: --limit N shows up to 1000, --json gives the cursor)", file=sys.stderr)
    return 0


def cmd_rm(ns: argparse.Namespace) -> int:
    if not ns.task_ids and ns.status is None and ns.older_than is None:
        raise CommandError("name TASK_IDs, or --status and/or --older-than", EXIT_USAGE)
    if ns.task_ids and (ns.status is not None or ns.older_than is not None):
        raise CommandError("TASK_IDs cannot be combined with --status or --older-than", EXIT_USAGE)
    daemon = _daemon(ns)
    if not ns.task_ids:
        for task_id in _call(daemon.remove_where, ns.status, ns.older_than):
            print(f"removed {task_id}")
        return 0
    missing = 0
    for task_id in ns.task_ids:
        if _call(daemon.remove, task_id):
            print(f"removed {task_id}")
        else:
            print(f"progressista rm: no such task: {task_id}", file=sys.stderr)
            missing += 1
    return 1 if missing else 0


def cmd_notify_test(ns: argparse.Namespace) -> int:
    from progressistad.client.admin import Daemon, delivery_line
    from progressistad.contract import NOTIFY_TEST_WAIT

    url, token, timeout = _settings(ns)
    # The daemon answers once the receiver has, or after NOTIFY_TEST_WAIT.
    record = _call(Daemon(url, token, max(timeout, NOTIFY_TEST_WAIT + 5)).notify_test, ns.route)
    line = delivery_line(record)
    if record.get("result") == "sent":
        print(line)
        return 0
    print(f"progressista notify-test: {line}", file=sys.stderr)
    return EXIT_UNREACHABLE


COMMANDS = {
    "run": cmd_run,
    "demo": cmd_demo,
    "send": cmd_send,
    "pipe": cmd_pipe,
    "tasks": cmd_tasks,
    "history": cmd_history,
    "rm": cmd_rm,
    "notify-test": cmd_notify_test,
}


if __name__ == "__main__":
    sys.exit(main())
