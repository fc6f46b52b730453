"""Configuration: one configargparse parser, parsed once into a frozen Settings object.

Precedence: command-line flag > PROGRESSISTA_* environment variable > config
file > default. Nothing reads os.environ after `load_settings` returns.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import configargparse

from progressistad import __version__

ENV_PREFIX = "PROGRESSISTA_"
DEFAULT_CONFIG_FILE = "/etc/progressista/progressistad.conf"


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
    max_task_age: float = 0.0
    allow_origins: Tuple[str, ...] = ()
    api_tokens: Tuple[str, ...] = dataclasses.field(default=(), repr=False)
    read_tokens: Tuple[str, ...] = dataclasses.field(default=(), repr=False)
    broadcast_interval: float = 0.1
    persist_interval: float = 1.0
    max_tasks: int = 10000
    max_body_bytes: int = 1024 * 1024
    ws_ping_interval: float = 20.0
    ws_stall_timeout: float = 30.0
    log_level: str = "info"
    static_path: Optional[str] = None
    base_path: str = ""
    trust_proxy: bool = False
    config_file: Optional[str] = None

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _csv(value: str) -> Tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def build_parser(prog: str = "progressistad") -> configargparse.ArgumentParser:
    parser = configargparse.ArgumentParser(
        prog=prog,
        description="A push gateway for progress bars: collects progress events over HTTP "
        "and streams every task's state to live browser dashboards.",
        auto_env_var_prefix=ENV_PREFIX,
        add_config_file_help=False,
        add_env_var_help=False,
        ignore_unknown_config_file_keys=False,
    )
    add = parser.add_argument
    add("--config", is_config_file=True, metavar="FILE", env_var=ENV_PREFIX + "CONFIG",
        help=f"config file of `option = value` lines (default {DEFAULT_CONFIG_FILE} if it exists)")
    add("--host", default=Settings.host, help="interface to bind (default %(default)s)")
    add("--port", type=int, default=Settings.port, help="TCP port (default %(default)s)")
    add("--storage-path", metavar="FILE", help="JSON state file kept across restarts (default: none)")
    add("--retention-seconds", type=float, default=Settings.retention_seconds, metavar="SEC",
        help="remove closed and errored tasks idle this long; 0 keeps them (default %(default)s)")
    add("--cleanup-interval", type=float, default=Settings.cleanup_interval, metavar="SEC",
        help="seconds between cleanup sweeps (default %(default)s)")
    add("--stale-seconds", type=float, default=Settings.stale_seconds, metavar="SEC",
        help="mark active tasks stale after this many idle seconds; 0 disables (default 0)")
    add("--max-task-age", type=float, default=Settings.max_task_age, metavar="SEC",
        help="remove any task idle this long whatever its status; 0 disables (default 0)")
    add("--allow-origins", default="", metavar="LIST",
        help="comma-separated origins allowed for CORS and WebSockets besides the daemon's own")
    add("--api-token", metavar="TOKEN", help="one read-write token (prefer a tokens file)")
    add("--api-tokens", metavar="LIST", help="comma-separated read-write tokens; overrides --api-token")
    add("--read-tokens", metavar="LIST", help="comma-separated read-only tokens")
    add("--broadcast-interval", type=float, default=Settings.broadcast_interval, metavar="SEC",
        help="at most one WebSocket message per this many seconds (default %(default)s)")
    add("--persist-interval", type=float, default=Settings.persist_interval, metavar="SEC",
        help="at most one state-file write per this many seconds (default %(default)s)")
    add("--max-tasks", type=int, default=Settings.max_tasks, metavar="N",
        help="most tasks kept at once (default %(default)s)")
    add("--max-body-bytes", type=int, default=Settings.max_body_bytes, metavar="BYTES",
        help="largest request body accepted (default %(default)s)")
    add("--ws-ping-interval", type=float, default=Settings.ws_ping_interval, metavar="SEC",
        help="WebSocket ping period; dead peers are closed after three missed pings (default %(default)s)")
    add("--ws-stall-timeout", type=float, default=Settings.ws_stall_timeout, metavar="SEC",
        help="close a dashboard that has not read a message for this long (default %(default)s)")
    add("--log-level", default=Settings.log_level, choices=LOG_LEVELS, help="(default %(default)s)")
    add("--static-path", metavar="DIR", help="serve the dashboard from DIR instead of the bundled one")
    add("--base-path", default="", metavar="PATH",
        help="URL prefix when served under a path behind a proxy, e.g. /progress-dash")
    add("--trust-proxy", action="store_true",
        help="honour X-Forwarded-For/Proto and X-Real-Ip from the proxy in front")
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def load_settings(
    argv: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None
) -> Settings:
    """Parse flags, environment and config file into Settings; raise ConfigError on bad values."""
    env = dict(os.environ if env is None else env)
    parser = build_parser()
    args = list(argv or ())
    if not any(a == "--config" or a.startswith("--config=") for a in args) and \
            ENV_PREFIX + "CONFIG" not in env and os.path.exists(DEFAULT_CONFIG_FILE):
        args = ["--config", DEFAULT_CONFIG_FILE] + args
    namespace = parser.parse_args(args=args, env_vars=env)
    return _settings_from(namespace)


def _settings_from(ns: configargparse.Namespace) -> Settings:
    write_tokens = _csv(ns.api_tokens) if ns.api_tokens else _csv(ns.api_token or "")
    settings = Settings(
        host=ns.host,
        port=ns.port,
        storage_path=ns.storage_path or None,
        retention_seconds=ns.retention_seconds,
        cleanup_interval=ns.cleanup_interval,
        stale_seconds=ns.stale_seconds,
        max_task_age=ns.max_task_age,
        allow_origins=tuple(o.rstrip("/") for o in _csv(ns.allow_origins)),
        api_tokens=write_tokens,
        read_tokens=_csv(ns.read_tokens or ""),
        broadcast_interval=ns.broadcast_interval,
        persist_interval=ns.persist_interval,
        max_tasks=ns.max_tasks,
        max_body_bytes=ns.max_body_bytes,
        ws_ping_interval=ns.ws_ping_interval,
        ws_stall_timeout=ns.ws_stall_timeout,
        log_level=ns.log_level,
        static_path=ns.static_path,
        base_path=_normalize_base_path(ns.base_path),
        trust_proxy=ns.trust_proxy,
        config_file=ns.config,
    )
    _validate(settings)
    return settings


def _normalize_base_path(value: str) -> str:
    value = value.strip().strip("/")
    return "/" + value if value else ""


_NON_NEGATIVE = ("retention_seconds", "stale_seconds", "max_task_age")
_POSITIVE = ("cleanup_interval", "persist_interval", "ws_ping_interval", "ws_stall_timeout",
             "max_tasks", "max_body_bytes")


def _validate(settings: Settings) -> None:
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"--port: {settings.port} is not a TCP port (0-65535)")
    for name in _NON_NEGATIVE + ("broadcast_interval",):
        value = getattr(settings, name)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"--{name.replace('_', '-')}: {value} must be a number >= 0")
    for name in _POSITIVE:
        value = getattr(settings, name)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: {value} must be a number > 0")
