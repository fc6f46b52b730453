"""Client settings: the server address, token and timings, from arguments or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER_URL = "http://localhost:8000/progress"
DEFAULT_PUSH_INTERVAL = 0.25
DEFAULT_REQUEST_TIMEOUT = 2.0
PROGRESS_PATH = "/progress"

ENV_SERVER_URL = "PROGRESSISTA_SERVER_URL"
ENV_PUSH_INTERVAL = "PROGRESSISTA_PUSH_INTERVAL"
ENV_REQUEST_TIMEOUT = "PROGRESSISTA_REQUEST_TIMEOUT"
ENV_API_TOKEN = "PROGRESSISTA_API_TOKEN"
ENV_PARENT_ID = "PROGRESSISTA_PARENT_ID"
"""Set by `progressista run -- CMD` for the command: the wrapper's task, parent of the command's bars."""
ENV_JOB = "PROGRESSISTA_JOB"
"""Set by `progressista run -- CMD` for the command: the wrapper's job, prefix of its bars' jobs."""


@dataclass(frozen=True)
class ClientSettings:
    """Where and how often a process reports its progress."""

    server_url: str = DEFAULT_SERVER_URL
    push_interval: float = DEFAULT_PUSH_INTERVAL
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    api_token: Optional[str] = None
    parent_id: Optional[str] = None
    job: Optional[str] = None

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "ClientSettings":
        """Settings from PROGRESSISTA_* variables; unset or unusable values fall back to defaults."""
        env = os.environ if environ is None else environ
        return cls(
            server_url=progress_url(env.get(ENV_SERVER_URL) or DEFAULT_SERVER_URL),
            push_interval=_positive(env.get(ENV_PUSH_INTERVAL), DEFAULT_PUSH_INTERVAL),
            request_timeout=_positive(env.get(ENV_REQUEST_TIMEOUT), DEFAULT_REQUEST_TIMEOUT),
            api_token=env.get(ENV_API_TOKEN) or None,
            parent_id=env.get(ENV_PARENT_ID) or None,
            job=env.get(ENV_JOB) or None,
        )


def _positive(raw: Optional[str], default: float) -> float:
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        return default
    return value if value > 0 and value == value and value != float("inf") else default


def progress_url(url: str) -> str:
    """The POST /progress URL for either that URL itself or the daemon's base URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"server URL must be http:// or https:// with a host, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(PROGRESS_PATH):
        path += PROGRESS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def base_url(url: str) -> str:
    """The daemon's base URL (no trailing slash, no query) for a base or /progress URL."""
    parts = urlsplit(progress_url(url))
    path = parts.path[: -len(PROGRESS_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def safe_url(url: str) -> str:
    """The URL without its query string, fit for a log line (a ?token= stays out)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def auth_headers(token: Optional[str]) -> dict:
    """The Authorization header for `token`, or none."""
    return {"Authorization": f"Bearer {token}"} if token else {}
