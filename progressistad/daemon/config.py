"""Configuration: one configargparse parser, parsed once into a frozen Settings object.

Every option has a flag (`--retention-seconds`), an environment variable
(`PROGRESSISTA_RETENTION_SECONDS`) and a config-file key (`retention-seconds`).
Precedence: flag > environment > config file > default. Values are converted
and checked here, so that a bad one is reported in one line naming the option,
the value and where it came from. Nothing reads os.environ after `parse_config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import configargparse

from progressistad import __version__, contract
from progressistad.core.telemetry import DEFAULT_BUDGET_BYTES
from progressistad.daemon.descriptors import RESERVED_MIN, RESERVED_SHARE

ENV_PREFIX = "PROGRESSISTA_"
DEFAULT_CONFIG_FILE = "/etc/progressista/progressistad.conf"
DEFAULT_NOTIFY_CONFIG = "/etc/progressista/notify.conf"
CONFIG_ENV_VAR = ENV_PREFIX + "CONFIG"
CREDENTIALS_ENV_VAR = "CREDENTIALS_DIRECTORY"
WRITE_TOKENS_CREDENTIAL = "api-tokens"
READ_TOKENS_CREDENTIAL = "read-tokens"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


class ConfigError(Exception):
    """A bad option value; the message names the option, the value and where it came from."""


@dataclass(frozen=True)
class Settings:
    """The daemon's effective configuration."""

    host: str = "0.0.0.0"
    port: int = 8000
    storage_path: Optional[str] = None
    retention_seconds: float = 86400.0
    cleanup_interval: float = 5.0
    stale_seconds: float = 0.0
    stale_factor: float = 0.0
    stale_min_seconds: float = 60.0
    max_task_age: float = 0.0
    allow_origins: Tuple[str, ...] = ()
    api_tokens: Tuple[str, ...] = dataclasses.field(default=(), repr=False)
    read_tokens: Tuple[str, ...] = dataclasses.field(default=(), repr=False)
    broadcast_interval: float = 0.1
    persist_interval: float = 1.0
    max_tasks: int = 10000
    max_body_bytes: int = 1024 * 1024
    telemetry_budget_bytes: int = DEFAULT_BUDGET_BYTES
    max_connections: int = 0
    idle_connection_timeout: float = 75.0
    body_timeout: float = 30.0
    ws_ping_interval: float = 20.0
    ws_stall_timeout: float = 30.0
    ws_heartbeat_interval: float = contract.WS_HEARTBEAT_SECONDS
    log_level: str = "info"
    static_path: Optional[str] = None
    base_path: str = ""
    trust_proxy: bool = False
    config_file: Optional[str] = None
    api_tokens_file: Optional[str] = None
    read_tokens_file: Optional[str] = None
    redis_url: Optional[str] = dataclasses.field(default=None, repr=False)
    redis_prefix: str = "progressista:"
    redis_wait: float = 0.0
    history_path: Optional[str] = None
    history_retention_days: float = 90.0
    history_max_runs: int = 100000
    history_children: bool = False
    overdue_factor: float = 1.5
    metrics_max_jobs: int = 200
    notify_config: Optional[str] = None
    public_url: Optional[str] = None
    credentials_directory: Optional[str] = None
    """$CREDENTIALS_DIRECTORY (systemd credentials), where secret files may also be found."""

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)


RELOADABLE_FIELDS = (
    "api_tokens", "read_tokens", "api_tokens_file", "read_tokens_file", "allow_origins",
    "retention_seconds", "stale_seconds", "stale_factor", "stale_min_seconds", "max_task_age",
    "log_level", "telemetry_budget_bytes", "notify_config", "history_retention_days",
    "overdue_factor",
)
"""Settings that SIGHUP applies to the running daemon; the others need a restart."""


# ---- value converters: each takes the raw string and returns the value or raises ValueError


def _text(raw: str) -> str:
    return raw.strip()


def _optional_text(raw: str) -> Optional[str]:
    return raw.strip() or None


def _directory(raw: str) -> Optional[str]:
    path = raw.strip()
    if path and not os.path.isdir(path):
        raise ValueError("not a directory")
    return path or None


def _csv(raw: str) -> Tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _origins(raw: str) -> Tuple[str, ...]:
    return tuple(origin.rstrip("/") for origin in _csv(raw))


def _boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS or word == "":
        return False
    raise ValueError("expected true or false")


def _integer(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise ValueError("not an integer") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"expected an integer from {low} to {high}" if high is not None
                             else f"expected an integer >= {low}")
        return value
    return convert


def _number(what: str, positive: bool, zero: str = "") -> Callable[[str], float]:
    """A finite number of `what` ("seconds", "days", or "" for a plain number), > 0 when
    `positive`, else >= 0 with `zero` saying what 0 means."""
    of = f" of {what}" if what else ""

    def convert(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"not a number{of}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ValueError(f"expected a number{of} > 0" if positive
                             else f"expected a number{of} >= 0 ({zero})")
        return value
    return convert


def _seconds(positive: bool) -> Callable[[str], float]:
    return _number("seconds", positive, "0 disables")


def _public_url(raw: str) -> Optional[str]:
    value = raw.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("expected http(s)://host[:port][/path], e.g. https://progress.lan/")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return value
    return convert


def _redis_url(raw: str) -> Optional[str]:
    value = raw.strip()
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected redis://[:password@]host[:port][/db], rediss://... or "
                         "unix:///path/to/redis.sock")
    return value or None


def _base_path(raw: str) -> str:
    value = raw.strip().strip("/")
    if any(c in value for c in "?#\\ ") or "//" in value:
        raise ValueError("expected a URL path such as /progress")
    return "/" + value if value else ""


@dataclass(frozen=True)
class Option:
    """One configuration option: flag, variable, file key, conversion and help."""

    name: str
    convert: Callable[[str], Any]
    default: Any
    help: str
    metavar: Optional[str] = None
    secret: bool = False
    field: Optional[str] = None
    """The Settings field it sets; None when it only feeds another (tokens)."""
    flag_only: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.replace("-", "_").upper()

    @property
    def is_switch(self) -> bool:
        return self.convert is _boolean


def _option(name: str, convert: Callable[[str], Any], help: str, metavar: Optional[str] = None,
            secret: bool = False, settings_field: Optional[str] = "") -> Option:
    field = name.replace("-", "_") if settings_field == "" else settings_field
    default = getattr(Settings, field) if field else None
    return Option(name, convert, default, help, metavar, secret, field)


OPTIONS: Tuple[Option, ...] = (
    _option("host", _text, "interface to bind; 0.0.0.0 for every IPv4 one, :: for IPv6 as well, "
            "127.0.0.1 behind a proxy on this host (default %(default)s; the packaged configuration "
            "file sets 127.0.0.1)", "ADDR"),
    _option("port", _integer(0, 65535), "TCP port to listen on (default %(default)s)", "PORT"),
    _option("storage-path", _optional_text, "JSON state file that keeps tasks across restarts, "
            "e.g. /var/lib/progressista/state.json (the systemd units'), written atomically with "
            "mode 0600; a file that cannot be parsed is moved aside and the daemon starts empty "
            "(default: none, state is kept in memory only)", "FILE"),
    _option("persist-interval", _seconds(True), "at most one state-file write per this many "
            "seconds; a crash loses at most this much (default %(default)s)", "SEC"),
    _option("retention-seconds", _seconds(False), "remove closed and errored tasks idle this long; "
            "0 keeps them (default %(default)s)", "SEC"),
    _option("cleanup-interval", _seconds(True), "seconds between cleanup sweeps "
            "(default %(default)s)", "SEC"),
    _option("stale-seconds", _seconds(False), "mark active tasks stale after this many idle "
            "seconds; 0 disables (default %(default)s)", "SEC"),
    _option("stale-factor", _number("", False, "0 disables"), "adapt stale detection to each task's cadence: a task that "
            "has shown at least 3 gaps between updates is stale once idle longer than this many "
            "times the median of its last 8 gaps (never sooner than --stale-min-seconds); one "
            "with fewer gaps follows --stale-seconds; 0 disables; with --redis-url every task "
            "follows --stale-seconds (default %(default)s; the packaged configuration file sets 10)", "F"),
    _option("stale-min-seconds", _seconds(False), "with --stale-factor, the least idle time "
            "after which a task is marked stale (default %(default)s)", "SEC"),
    _option("max-task-age", _seconds(False), "remove any task idle this long whatever its status; "
            "0 disables (default %(default)s)", "SEC"),
    _option("max-tasks", _integer(1), "most tasks kept at once; finished ones are evicted first, "
            "then new tasks get 503 (default %(default)s)", "N"),
    _option("max-body-bytes", _integer(1), "largest request body accepted; larger ones get 413 "
            "(default %(default)s)", "BYTES"),
    _option("telemetry-budget-bytes", _integer(0), "memory for the series behind the "
            "dashboard's sparklines and the log tails of every task together; beyond it the least "
            "recently updated tasks lose their series, then their tails (events are never refused "
            "for it; with --redis-url it holds the series, Redis the tails) "
            "(default %(default)s)", "BYTES"),
    _option("max-connections", _integer(0), "most client connections (HTTP and WebSocket) open "
            "at once; one more is answered 503 with Retry-After and closed; 0 derives it from the "
            f"open-files limit, less 1/{RESERVED_SHARE} of it (at least {RESERVED_MIN}) kept for "
            "the daemon's own files and outbound sockets: state file, history database, Redis, "
            "notifications (default %(default)s)", "N"),
    _option("idle-connection-timeout", _seconds(True), "close an HTTP connection that sends "
            "nothing for this many seconds, kept alive or never used; longer than the pools of "
            "proxies and browsers (default %(default)s)", "SEC"),
    _option("body-timeout", _seconds(True), "seconds a client may take to send a request body; "
            "a body refused with 413 is read and discarded this long at most, so that the client "
            "gets to read the answer (default %(default)s)", "SEC"),
    _option("allow-origins", _origins, "comma-separated origins (scheme://host[:port]) allowed "
            "for CORS and WebSockets besides the daemon's own (default: none)", "LIST"),
    _option("api-token", _optional_text, "one read-write token (prefer --api-tokens-file: "
            "flags show in ps)", "TOKEN", secret=True, settings_field=None),
    _option("api-tokens", _csv, "comma-separated read-write tokens; overrides --api-token",
            "LIST", secret=True, settings_field=None),
    _option("api-tokens-file", _optional_text, "file of read-write tokens, one per line "
            "(or comma-separated), # comments; added to the tokens above", "FILE"),
    _option("read-tokens", _csv, "comma-separated read-only tokens (dashboard, GET /tasks, /ws, "
            "/metrics)", "LIST", secret=True, settings_field=None),
    _option("read-tokens-file", _optional_text, "file of read-only tokens, one per line, "
            "# comments", "FILE"),
    _option("broadcast-interval", _seconds(False), "at most one WebSocket message per this many "
            "seconds to each dashboard, changes in between coalesced (default %(default)s)", "SEC"),
    _option("ws-ping-interval", _seconds(True), "WebSocket ping period; a peer that stops "
            "answering is closed after one period, three on tornado < 6.5 "
            "(default %(default)s)", "SEC"),
    _option("ws-stall-timeout", _seconds(True), "close a dashboard that has not read a message "
            "for this long (default %(default)s)", "SEC"),
    _option("ws-heartbeat-interval", _seconds(True), "a delta-protocol dashboard that got no "
            "other message for this many seconds gets a heartbeat; the bundled dashboard "
            "reconnects after three silent periods (default %(default)s)", "SEC"),
    _option("log-level", _choice(*LOG_LEVELS), "one of " + ", ".join(LOG_LEVELS)
            + "; debug logs every request with the client address (default %(default)s)", "LEVEL"),
    _option("static-path", _directory, "serve the dashboard from DIR instead of the "
            "bundled copy", "DIR"),
    _option("base-path", _base_path, "URL prefix when a proxy serves the daemon under a path, "
            "e.g. /progress-dash (default: none)", "PATH"),
    _option("redis-url", _redis_url, "share tasks with the other daemons of a group through "
            "Redis, e.g. redis://redis.lan:6379/0; --storage-path is then unused (default: none, "
            "tasks are kept in this process; needs python3-redis)", "URL", secret=True),
    _option("redis-prefix", _text, "prefix of every Redis key, so that several groups can share "
            "one Redis (default %(default)s)", "PREFIX"),
    _option("redis-wait", _seconds(False), "at start, keep trying to reach Redis this long before "
            "giving up with exit status 1; 0 gives up at once (default %(default)s)", "SEC"),
    _option("history-path", _optional_text, "SQLite database of the run history (every task's "
            "runs: close, error, abandoned), written off the event loop; an unusable one is moved "
            "aside and ingest goes on (default: history.sqlite3 beside --storage-path; without "
            "either, kept in memory; unused with --redis-url, which keeps it in Redis)", "FILE"),
    _option("history-retention-days", _number("days", False, "0 keeps runs whatever their age"),
            "remove runs that ended this many days ago; 0 keeps them whatever their age "
            "(default %(default)s)", "DAYS"),
    _option("history-max-runs", _integer(0), "most runs the history keeps, the oldest removed "
            "first; 0 turns the history off (default %(default)s)", "N"),
    _option("history-children", _boolean, "also keep the runs of child bars (meta.parent_id), "
            "such as a wrapped command's own bars (default false)", "BOOL"),
    _option("overdue-factor", _number("", True), "an active task whose job has 3 close runs or "
            "more is overdue once its run takes longer than this times the 90th percentile of the "
            "job's last 20 close runs (default %(default)s)", "FACTOR"),
    _option("metrics-max-jobs", _integer(0), "/metrics shows the run history of at most this many "
            "jobs, the first by name; 0 shows none (default %(default)s)", "N"),
    _option("notify-config", _optional_text, "notification routes: an INI file of where to send "
            "which events (see Notifications in progressistad(8)); a bad file stops the daemon at "
            f"start, and on reload keeps the routes in use (default {DEFAULT_NOTIFY_CONFIG} when "
            "it exists; an empty value reads none)", "FILE"),
    _option("public-url", _public_url, "the dashboard's address as receivers of notifications "
            "should link to it, e.g. https://progress.lan/ (default: http://HOSTNAME:PORT/)",
            "URL"),
    _option("trust-proxy", _boolean, "take the client address and scheme from the X-Real-Ip, "
            "X-Forwarded-For and X-Forwarded-Proto headers of the proxy in front, and the host "
            "that origins are checked against from X-Forwarded-Host; set only when that proxy, "
            "replacing those headers, is the sole way in (default false)", "BOOL"),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}

EPILOG = f"""\
Every option can also be set by an environment variable (the option name in
capitals with PROGRESSISTA_ in front and _ for -, e.g. PROGRESSISTA_RETENTION_SECONDS)
and by a config-file line (`retention-seconds = 300`; # starts a comment; a
switch such as trust-proxy takes true or false). Precedence: flag, then
variable, then config file, then default. The config file is --config FILE,
else $PROGRESSISTA_CONFIG (empty: none), else {DEFAULT_CONFIG_FILE} when it exists.

Tokens: PROGRESSISTA_API_TOKENS overrides PROGRESSISTA_API_TOKEN; tokens from
--api-tokens-file and --read-tokens-file are added, and so are the systemd
credentials named `{WRITE_TOKENS_CREDENTIAL}` and `{READ_TOKENS_CREDENTIAL}` when
$CREDENTIALS_DIRECTORY is set (LoadCredential=). With no token at all every
route is open. Tokens never appear in logs or in --print-config.

Signals: SIGHUP reloads tokens, origins, retention, the stale rules, max age, log
level, the telemetry budget, history retention, overdue factor and the notification
routes from the same sources (a bad file keeps the old settings; a bad route file
keeps the old routes); SIGTERM and SIGINT write the state and stop.
Exit status: 0 clean stop, 1 runtime failure (port
taken, final state write failed), 2 bad configuration or usage."""


class _Parser(configargparse.ArgumentParser):
    """configargparse that raises ConfigError instead of printing usage and exiting."""

    def error(self, message: Any) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see --help)")


class ConfigFileSyntax(configargparse.ConfigFileParser):
    """`key = value` lines; remembers where each key was, refuses unknown keys and bad lines."""

    def __init__(self) -> None:
        self.lines: Dict[str, int] = {}
        self.path: Optional[str] = None

    def get_syntax_description(self) -> str:
        return "`option = value` lines, # starts a comment"

    def parse(self, stream: Any) -> "OrderedDict[str, str]":
        self.path = getattr(stream, "name", "config file")
        items: "OrderedDict[str, str]" = OrderedDict()
        for number, line in enumerate(stream, start=1):
            parsed = self._parse_line(line, number)
            if parsed is not None:
                key, value = parsed
                items[key] = value
                self.lines[key] = number
        return items

    def _parse_line(self, line: str, number: int) -> Optional[Tuple[str, str]]:
        text = line.strip()
        if not text or text[0] in "#;" or (text.startswith("[") and text.endswith("]")):
            return None
        for marker in (" #", "\t#", " ;", "\t;"):
            if marker in text:
                text = text.split(marker, 1)[0].rstrip()
        key, value = _split_key_value(text)
        key = key.lstrip("-")
        option = OPTIONS_BY_NAME.get(key)
        where = f"{self.path}:{number}"
        if option is None:
            raise configargparse.ConfigFileParserException(
                f"unknown key {key!r} in {where}")
        if value is None:
            if not option.is_switch:
                raise configargparse.ConfigFileParserException(
                    f"{where}: {key} needs a value (`{key} = VALUE`)")
            value = "true"
        return key, _unquote(value)


def _split_key_value(text: str) -> Tuple[str, Optional[str]]:
    for index, char in enumerate(text):
        if char in "=:":
            return text[:index].strip(), text[index + 1:].strip()
        if char.isspace():
            rest = text[index:].strip()
            if rest[:1] in ("=", ":"):
                rest = rest[1:].strip()
            return text[:index], rest
    return text, None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


@dataclass(frozen=True)
class ParsedConfig:
    """The settings plus where each option's value came from, for --print-config."""

    settings: Settings
    sources: Mapping[str, str]
    token_counts: Mapping[str, Tuple[int, str]]
    """Tokens by where they came from: name -> (count, source), for --print-config."""
    print_config: bool = False
    import_state: Optional[str] = None
    """`--import-state FILE`: load FILE into Redis and exit instead of serving."""


def build_parser(prog: str = "progressistad") -> configargparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="progressistad: a push gateway for progress bars. It collects progress\n"
        "events over HTTP (POST /progress) and streams every task's state to live\n"
        "browser dashboards over WebSockets (/ws, dashboard at /static/index.html).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        config_file_parser_class=ConfigFileSyntax,
        add_config_file_help=False,
        add_env_var_help=False,
        ignore_unknown_config_file_keys=False,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--config", is_config_file=True, metavar="FILE", env_var=CONFIG_ENV_VAR,
        help=f"config file of option = value lines, an unknown key is an error (default "
        f"{DEFAULT_CONFIG_FILE} when it exists; an empty {CONFIG_ENV_VAR} reads none) "
        f"[env {CONFIG_ENV_VAR}]")
    for option in OPTIONS:
        help_text = option.help.replace("%(default)s", _default_text(option.default))
        kwargs: Dict[str, Any] = dict(
            env_var=option.env_var, metavar=option.metavar, default=None,
            help=f"{help_text} [env {option.env_var}]",
        )
        if option.is_switch:
            kwargs.update(nargs="?", const="true")
        add(option.flag, **kwargs)
    add("--import-state", metavar="FILE",
        help="load a JSON state file (this daemon's or the earlier build's) into the Redis "
        "of --redis-url, replacing the tasks of the same ids, then exit")
    add("--print-config", action="store_true",
        help="print every option's effective value and where it came from (secrets redacted), "
        "then exit")
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace("%", "%%")


def parse_config(
    argv: Optional[Sequence[str]] = None,
    env: Optional[Mapping[str, str]] = None,
    default_config_file: str = DEFAULT_CONFIG_FILE,
    default_notify_config: str = DEFAULT_NOTIFY_CONFIG,
) -> ParsedConfig:
    """Parse flags, environment and config file; raise ConfigError naming any bad value."""
    env = dict(os.environ if env is None else env)
    args = list(argv or ())
    config_path, config_source = _config_file(args, env, default_config_file)
    if config_path is not None:
        _check_readable(config_path, config_source)
        if config_source == "default":
            args = ["--config", config_path] + args
    parser = build_parser()
    syntax: ConfigFileSyntax = parser._config_file_parser  # holds the line numbers it read
    namespace = parser.parse_args(args=args, env_vars=env)
    sources = {option.name: _source_of(option, args, env, syntax) for option in OPTIONS}
    values = {option.name: _converted(option, getattr(namespace, _dest(option)), sources)
              for option in OPTIONS}
    if sources["notify-config"] == "default" and os.path.exists(default_notify_config):
        values["notify-config"] = default_notify_config
        sources = {**sources, "notify-config": "default (the file exists)"}
    settings, token_counts = _settings_from(values, sources, env, config_path)
    return ParsedConfig(settings, sources, token_counts, bool(namespace.print_config),
                        namespace.import_state)


def load_settings(
    argv: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None
) -> Settings:
    """Parse flags, environment and config file into Settings; raise ConfigError on bad values."""
    return parse_config(argv, env).settings


def _dest(option: Option) -> str:
    return option.name.replace("-", "_")


def _config_file(
    args: Sequence[str], env: Mapping[str, str], default: str
) -> Tuple[Optional[str], str]:
    """The config file to read and where that choice came from."""
    for index in range(len(args) - 1, -1, -1):
        arg = args[index]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1] or None, "flag --config"
        if arg == "--config" and index + 1 < len(args):
            return args[index + 1] or None, "flag --config"
    if CONFIG_ENV_VAR in env:
        return env[CONFIG_ENV_VAR] or None, f"variable {CONFIG_ENV_VAR}"
    if default and os.path.exists(default):
        return default, "default"
    return None, "default"


def _check_readable(path: str, source: str) -> None:
    try:
        with open(path, encoding="utf-8") as stream:
            stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--config {path!r} from {source}: cannot read it: {reason}") from None


def _on_command_line(option: Option, args: Sequence[str]) -> bool:
    return any(arg == option.flag or arg.startswith(option.flag + "=") for arg in args)


def _source_of(option: Option, args: Sequence[str], env: Mapping[str, str],
               syntax: ConfigFileSyntax) -> str:
    if _on_command_line(option, args):
        return f"flag {option.flag}"
    if option.env_var in env:
        return f"variable {option.env_var}"
    if option.name in syntax.lines:
        return f"file {syntax.path}:{syntax.lines[option.name]}"
    return "default"


def _converted(option: Option, raw: Optional[str], sources: Mapping[str, str]) -> Any:
    if raw is None:
        return option.default
    try:
        return option.convert(raw)
    except ValueError as exc:
        shown = "(redacted)" if option.secret else repr(raw)
        raise ConfigError(
            f"{option.flag} {shown} from {sources[option.name]}: {exc}") from None


def _settings_from(
    values: Mapping[str, Any], sources: Mapping[str, str], env: Mapping[str, str],
    config_path: Optional[str],
) -> Tuple[Settings, Dict[str, Tuple[int, str]]]:
    write = values["api-tokens"] or ((values["api-token"],) if values["api-token"] else ())
    read = tuple(values["read-tokens"] or ())
    counts: Dict[str, Tuple[int, str]] = {}
    credentials = env.get(CREDENTIALS_ENV_VAR) or None
    for name, file_option, credential in (
        ("write", "api-tokens-file", WRITE_TOKENS_CREDENTIAL),
        ("read", "read-tokens-file", READ_TOKENS_CREDENTIAL),
    ):
        extra: List[str] = []
        path = values[file_option]
        if path:
            tokens = read_tokens_file(path, f"--{file_option} {path!r} from {sources[file_option]}")
            counts[f"{file_option} {path}"] = (len(tokens), sources[file_option])
            extra += tokens
        if credentials:
            cred_path = os.path.join(credentials, credential)
            if os.path.exists(cred_path):
                tokens = read_tokens_file(cred_path, f"systemd credential {credential!r} "
                                          f"({cred_path})")
                counts[f"credential {credential}"] = (len(tokens), cred_path)
                extra += tokens
        if name == "write":
            write = _unique(tuple(write) + tuple(extra))
        else:
            read = _unique(read + tuple(extra))
    fields = {option.field: values[option.name] for option in OPTIONS if option.field}
    settings = Settings(api_tokens=write, read_tokens=read, config_file=config_path,
                        credentials_directory=credentials, **fields)
    return settings, counts


def _unique(tokens: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(tokens))


def read_tokens_file(path: str, what: str) -> List[str]:
    """Tokens of a file, one per line (or comma-separated), # comments skipped; ConfigError if none."""
    try:
        with open(path, encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{what}: cannot read it: {reason}") from None
    tokens = [token for line in lines if not line.strip().startswith("#") for token in _csv(line)]
    if not tokens:
        raise ConfigError(f"{what}: holds no token (an empty tokens file would open every route)")
    return tokens


def reloadable_changes(current: Settings, new: Settings) -> Tuple[Settings, List[str]]:
    """`current` with the reloadable fields of `new`, and the names of other fields that differ."""
    merged = current.replace(**{name: getattr(new, name) for name in RELOADABLE_FIELDS})
    ignored = [field.name for field in dataclasses.fields(Settings)
               if field.name not in RELOADABLE_FIELDS and field.name != "config_file"
               and getattr(current, field.name) != getattr(new, field.name)]
    return merged, ignored


def format_config(parsed: ParsedConfig) -> str:
    """`--print-config`: `name = value  # source` for every option, secrets redacted."""
    settings = parsed.settings
    lines = [f"# progressistad {__version__}: effective configuration",
             f"# config file: {settings.config_file or '(none)'}"]
    for option in OPTIONS:
        lines.append(f"{option.name} = {_shown_value(option, settings, parsed)}"
                     f"  # {parsed.sources[option.name]}")
    for name, (count, source) in parsed.token_counts.items():
        lines.append(f"# tokens from {name}: {count} (redacted)  # {source}")
    lines.append(f"# effective tokens: {len(settings.api_tokens)} read-write, "
                 f"{len(settings.read_tokens)} read-only"
                 + ("" if settings.api_tokens or settings.read_tokens else " (every route open)"))
    return "\n".join(lines)


def _shown_value(option: Option, settings: Settings, parsed: ParsedConfig) -> str:
    if option.secret:
        if option.field and getattr(settings, option.field) is None:
            return "(unset)"
        return "(set, redacted)" if parsed.sources[option.name] != "default" else "(unset)"
    value = getattr(settings, option.field) if option.field else option.default
    if value is None or value == "" or value == ():
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
