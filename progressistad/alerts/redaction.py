"""The safe form of a notification URL: what logs, errors, /notifications and --print-config show.

Userinfo, query values that look like credentials, the secret part of chat
webhook paths, and path segments that look like generated tokens are replaced
by `***`. A scheme no built-in sink knows (an Apprise URL) keeps only its
scheme, since such URLs carry tokens in their host or path.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_KNOWN_SCHEMES = ("http", "https", "ntfy", "ntfys", "slack+https", "discord+https",
                  "slack+http", "discord+http", "mailto")
_CHAT_SCHEMES = ("slack+https", "discord+https", "slack+http", "discord+http")
"""Incoming-webhook URLs: their path is the credential."""
_SECRET_QUERY_KEY = re.compile(r"token|key|secret|pass|auth|sig|credential|code|session",
                               re.IGNORECASE)
_TOKEN_LIKE = re.compile(r"(?=.*\d)[A-Za-z0-9_\-.~%=]{16,}\Z")
_SECRET_PATH_AFTER = (
    ("hooks.slack.com", "/services/"),
    ("discord.com", "/api/webhooks/"),
    ("discordapp.com", "/api/webhooks/"),
)


def redact(url: str, path_is_secret: bool = False) -> str:
    """`url` without its secrets; with `path_is_secret` (from url-file) only its host shows."""
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower()
    if not colon:
        return MASK
    if scheme not in _KNOWN_SCHEMES or not rest:
        return f"{scheme}://{MASK}" if re.match(r"[a-z][a-z0-9+.-]*\Z", scheme) else MASK
    if scheme == "mailto":
        return url.split("?", 1)[0]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"{scheme}://{MASK}"
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + _bracketed(host) + port
    if path_is_secret:
        return urlunsplit((parts.scheme, netloc, "/" + MASK if parts.path.strip("/") else "",
                           MASK if parts.query else "", MASK if parts.fragment else ""))
    return urlunsplit((parts.scheme, netloc, _path(scheme, host, parts.path), _query(parts.query),
                       MASK if parts.fragment else ""))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _path(scheme: str, host: str, path: str) -> str:
    for secret_host, prefix in _SECRET_PATH_AFTER:
        if host.lower().endswith(secret_host) and path.startswith(prefix):
            return prefix + MASK
    if scheme in _CHAT_SCHEMES and path.strip("/"):
        return "/" + MASK
    return "/".join(MASK if _TOKEN_LIKE.match(segment) else segment
                    for segment in path.split("/"))


def _query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        key, equals, value = pair.partition("=")
        if _TOKEN_LIKE.match(key):
            pairs.append(MASK)
        elif equals and (_SECRET_QUERY_KEY.search(key) or _TOKEN_LIKE.match(value)):
            pairs.append(f"{key}={MASK}")
        else:
            pairs.append(pair)
    return "&".join(pairs)
