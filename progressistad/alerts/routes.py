"""The operator's route file (`--notify-config`): INI sections parsed into frozen routes.

One section per route plus an optional `[smtp]` section. Comments are whole
lines only, since URLs may hold `#`. Every problem raises one `RouteError`
whose message is one line naming the file, the line, the route and the
problem, with any secret of a URL redacted.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Tuple
from urllib.parse import SplitResult, urlsplit

from progressistad.alerts import events
from progressistad.alerts.redaction import redact
from progressistad.daemon.persistence.files import reason

CREDENTIALS_ENV_VAR = "CREDENTIALS_DIRECTORY"
SMTP_SECTION = "smtp"

DEFAULT_EVENTS = (events.ERROR, events.STALLED)
DEFAULT_GROUP_WAIT = 10.0
DEFAULT_RATE_LIMIT = 20

WEBHOOK, NTFY, SLACK, DISCORD, MAIL, APPRISE = (
    "webhook", "ntfy", "slack", "discord", "mail", "apprise")
SINK_OF_SCHEME = {
    "http": WEBHOOK, "https": WEBHOOK,
    "ntfy": NTFY, "ntfys": NTFY,
    "slack+https": SLACK, "discord+https": DISCORD,
    "slack+http": SLACK, "discord+http": DISCORD,
    "mailto": MAIL,
}
"""Schemes the built-in sinks handle; any other goes to Apprise."""

ROUTE_KEYS = ("url", "url-file", "events", "match", "min-duration", "group-wait", "rate-limit",
              "token", "token-file", "priority", "tags", "children")
SMTP_KEYS = ("host", "port", "from", "username", "password-file", "starttls")
NTFY_PRIORITIES = ("1", "2", "3", "4", "5", "min", "low", "default", "high", "max", "urgent")
STARTTLS_MODES = {"auto": "auto", "yes": "yes", "true": "yes", "on": "yes",
                  "no": "no", "false": "no", "off": "no"}
_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True,
             "0": False, "no": False, "false": False, "off": False}
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}\Z")


class RouteError(Exception):
    """A route file that cannot be used; the message is one line for the log or stderr."""

    def __init__(self, path: str, line: Optional[int], route: Optional[str], problem: str) -> None:
        where = path if line is None else f"{path}:{line}"
        what = f"route [{route}]: " if route else ""
        super().__init__(f"notify config {where}: {what}{problem}")
        self.path, self.line, self.route, self.problem = path, line, route, problem


@dataclass(frozen=True)
class Route:
    """Where one kind of notification goes and which tasks it is about."""

    name: str
    sink: str
    """Which sink sends it: one of WEBHOOK, NTFY, SLACK, DISCORD, MAIL, APPRISE."""
    safe_url: str
    """The URL with its secrets redacted, for logs, errors and /notifications."""
    url: str = field(repr=False)
    events: FrozenSet[str] = frozenset(DEFAULT_EVENTS)
    match: Tuple[str, ...] = ("*",)
    min_duration: float = 0.0
    group_wait: float = DEFAULT_GROUP_WAIT
    rate_limit: int = DEFAULT_RATE_LIMIT
    """Messages per minute; 0 means no limit."""
    token: Optional[str] = field(default=None, repr=False)
    priority: Optional[str] = None
    tags: Tuple[str, ...] = ()
    children: bool = False
    line: int = 0
    """Line of the section header in the file, for messages about the route later."""

    def describe(self) -> str:
        """One line for `--print-config`: every setting, secrets redacted."""
        parts = [f"url = {self.safe_url}", "events = " + ", ".join(sorted(self.events)),
                 "match = " + ", ".join(self.match), f"min-duration = {self.min_duration:g}",
                 f"group-wait = {self.group_wait:g}", f"rate-limit = {self.rate_limit}",
                 f"children = {str(self.children).lower()}"]
        if self.token:
            parts.append("token = (set, redacted)")
        if self.priority:
            parts.append(f"priority = {self.priority}")
        if self.tags:
            parts.append("tags = " + ", ".join(self.tags))
        return f"[{self.name}] " + "; ".join(parts)


@dataclass(frozen=True)
class SmtpSettings:
    """How `mailto:` routes reach a mail server (the `[smtp]` section)."""

    host: str = "localhost"
    port: int = 25
    sender: Optional[str] = None
    """The From: address; None lets the sink name the daemon's host."""
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    starttls: str = "auto"
    """auto: when the server offers it; yes: required; no: never."""


@dataclass(frozen=True)
class RouteConfig:
    """Every route of one file, and the mail server settings."""

    path: Optional[str] = None
    routes: Tuple[Route, ...] = ()
    smtp: SmtpSettings = SmtpSettings()

    def __len__(self) -> int:
        return len(self.routes)

    def get(self, name: str) -> Optional[Route]:
        return next((route for route in self.routes if route.name == name), None)

    def describe(self) -> List[str]:
        """Lines for `--print-config`, secrets redacted."""
        lines = [f"# notify config: {self.path or '(none)'}, {len(self.routes)} route(s)"]
        lines += ["# route " + route.describe() for route in self.routes]
        if any(route.sink == MAIL for route in self.routes):
            smtp = self.smtp
            lines.append(f"# smtp {smtp.host}:{smtp.port} starttls={smtp.starttls}"
                         + (f" username={smtp.username} password=(redacted)"
                            if smtp.username else ""))
        return lines


def load(path: str, env: Mapping[str, str]) -> RouteConfig:
    """Parse the route file at `path`; `env` gives $CREDENTIALS_DIRECTORY for secret files."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise RouteError(path, None, None, f"cannot read it: {reason(exc)}") from None
    return parse(text, path, env)


def parse(text: str, path: str, env: Mapping[str, str]) -> RouteConfig:
    """Parse the text of a route file; `path` names it in errors and anchors relative files."""
    parser = _read(text, path)
    lines = _KeyLines(text)
    secrets = _SecretFiles(path, env.get(CREDENTIALS_ENV_VAR) or None)
    routes: List[Route] = []
    smtp = SmtpSettings()
    for name in parser.sections():
        section = _Section(path, name, parser[name], lines)
        if name == SMTP_SECTION:
            smtp = _smtp(section, secrets)
        else:
            routes.append(_route(section, secrets))
    return RouteConfig(path=path, routes=tuple(routes), smtp=smtp)


def _read(text: str, path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=None, comment_prefixes=("#", ";"),
        strict=True, empty_lines_in_values=False, default_section="\0no defaults")
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateOptionError as exc:
        raise RouteError(path, exc.lineno, exc.section, f"key {exc.option!r} given twice") from None
    except configparser.DuplicateSectionError as exc:
        raise RouteError(path, exc.lineno, exc.section, "section given twice") from None
    except configparser.MissingSectionHeaderError as exc:
        raise RouteError(path, exc.lineno, None,
                         "a key before any [route] section header") from None
    except configparser.ParsingError as exc:
        lineno = exc.errors[0][0] if exc.errors else None
        raise RouteError(path, lineno, None,
                         "not a `key = value` line, a [section] header or a comment") from None
    return parser


class _KeyLines:
    """Line numbers of section headers and keys, which configparser does not keep."""

    def __init__(self, text: str) -> None:
        self.sections: Dict[str, int] = {}
        self.keys: Dict[Tuple[str, str], int] = {}
        section = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line[0] in "#;" or raw[0].isspace():
                continue  # blank, comment, or the continuation of a value
            header = configparser.ConfigParser.SECTCRE.match(line)
            if header:
                section = header.group("header")
                self.sections.setdefault(section, number)
                continue
            option = configparser.ConfigParser.OPTCRE.match(line)
            if option and section is not None:
                key = option.group("option").strip().lower()
                self.keys.setdefault((section, key), number)

    def of(self, section: str, key: Optional[str] = None) -> Optional[int]:
        if key is not None and (section, key) in self.keys:
            return self.keys[(section, key)]
        return self.sections.get(section)


class _Section:
    """One section's values, and errors that name its file, line and name."""

    def __init__(self, path: str, name: str, values: Mapping[str, str], lines: _KeyLines) -> None:
        self.path, self.name, self.values, self._lines = path, name, values, lines

    def error(self, problem: str, key: Optional[str] = None) -> RouteError:
        return RouteError(self.path, self._lines.of(self.name, key), self.name, problem)

    @property
    def line(self) -> int:
        return self._lines.of(self.name) or 0

    def check_keys(self, known: Tuple[str, ...], hint: str = "") -> None:
        for key in self.values:
            if key not in known:
                raise self.error(f"unknown key {key!r}{hint} (keys: {', '.join(known)})", key)

    def text(self, key: str) -> Optional[str]:
        value = self.values.get(key)
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise self.error(f"{key} is empty", key)
        return value

    def items(self, key: str) -> Optional[Tuple[str, ...]]:
        """A comma-separated list, or None when the key is absent."""
        value = self.text(key)
        if value is None:
            return None
        listed = tuple(item.strip() for item in value.split(",") if item.strip())
        if not listed:
            raise self.error(f"{key} lists nothing", key)
        return listed

    def number(self, key: str, default: float) -> float:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number >= 0 or number == float("inf"):
            raise self.error(f"{key} must be a number of seconds >= 0, not {value!r}", key)
        return number

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.text(key)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise self.error(f"{key} must be a whole number from {low} to {high}, not {value!r}",
                             key)
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        if value.lower() not in _BOOLEANS:
            raise self.error(f"{key} must be true or false, not {value!r}", key)
        return _BOOLEANS[value.lower()]


class _SecretFiles:
    """Secrets from files: a relative name is a systemd credential, else a file beside this one."""

    def __init__(self, config_path: str, credentials: Optional[str]) -> None:
        self._base = os.path.dirname(os.path.abspath(config_path))
        self._credentials = credentials

    def read(self, section: _Section, key: str) -> Optional[str]:
        name = section.text(key)
        if name is None:
            return None
        path = self._resolve(name)
        try:
            with open(path, encoding="utf-8") as stream:
                lines = stream.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise section.error(f"{key} {name!r}: cannot read it: {reason(exc)}", key) from None
        values = [line.strip() for line in lines
                  if line.strip() and not line.strip().startswith("#")]
        if not values:
            raise section.error(f"{key} {name!r} holds nothing", key)
        return values[0]

    def _resolve(self, name: str) -> str:
        if os.path.isabs(name):
            return name
        if self._credentials and os.sep not in name:
            credential = os.path.join(self._credentials, name)
            if os.path.exists(credential):
                return credential
        return os.path.join(self._base, name)


def _route(section: _Section, secrets: _SecretFiles) -> Route:
    if not _ROUTE_NAME.match(section.name):
        raise section.error("a route name is letters, digits, '_', '.' and '-' (at most 64)")
    section.check_keys(ROUTE_KEYS)
    url, from_file = _url(section, secrets)
    sink, safe_url = _sink_of(section, url, from_file)
    token = _one_of(section, secrets, "token", "token-file")
    if token is not None and sink not in (NTFY, WEBHOOK):
        raise section.error("a token applies to ntfy and webhook routes only",
                            _key_of(section, "token"))
    return Route(
        name=section.name, sink=sink, safe_url=safe_url, url=url,
        events=_events(section), match=section.items("match") or ("*",),
        min_duration=section.number("min-duration", 0.0),
        group_wait=section.number("group-wait", DEFAULT_GROUP_WAIT),
        rate_limit=section.integer("rate-limit", DEFAULT_RATE_LIMIT, 0, 100000),
        token=token, priority=_priority(section, sink), tags=_tags(section, sink),
        children=section.boolean("children", False), line=section.line,
    )


def _url(section: _Section, secrets: _SecretFiles) -> Tuple[str, bool]:
    """The route's URL, and whether it came from a file (then the whole path is a secret)."""
    if "url" in section.values and "url-file" in section.values:
        raise section.error("give url or url-file, not both", "url-file")
    if "url-file" in section.values:
        return secrets.read(section, "url-file") or "", True
    url = section.text("url")
    if url is None:
        raise section.error("no url (or url-file)")
    return url, False


def _sink_of(section: _Section, url: str, from_file: bool) -> Tuple[str, str]:
    """Which sink sends to `url` and the URL's safe form; RouteError when it cannot be used."""
    key = "url-file" if from_file else "url"
    safe = redact(url, path_is_secret=from_file)
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    if not match:
        raise section.error(f"{key} {safe!r} is not a URL (no scheme)", key)
    scheme = match.group(1).lower()
    sink = SINK_OF_SCHEME.get(scheme)
    if sink is None:
        return APPRISE, _check_apprise(section, key, url, scheme, safe)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise section.error(f"{key} {safe!r} is not a URL: {exc}", key) from None
    problem = _url_problem(sink, parts)
    if problem:
        raise section.error(f"{key} {safe!r}: {problem}", key)
    return sink, safe


def _url_problem(sink: str, parts: SplitResult) -> Optional[str]:
    if sink == MAIL:
        addresses = [a.strip() for a in parts.path.split(",") if a.strip()]
        if not addresses or not all(re.match(r"[^@\s<>]+@[^@\s<>]+\Z", a) for a in addresses):
            return "mailto: needs one or more addresses (mailto:ops@example.com)"
        return None
    if not parts.hostname:
        return "no host"
    if sink == NTFY:
        topic = parts.path.strip("/")
        if not _NTFY_TOPIC.match(topic):
            return "an ntfy URL is ntfy://host/topic (topic: letters, digits, '-' and '_')"
    if sink in (SLACK, DISCORD) and parts.path in ("", "/"):
        return "no webhook path"
    return None


def _check_apprise(section: _Section, key: str, url: str, scheme: str, safe: str) -> str:
    """Apprise's own redacted form of `url`, once it is sure Apprise can send there."""
    try:
        import apprise
    except ImportError:
        raise section.error(
            f"scheme {scheme!r} needs the apprise package, which is not installed "
            "(apt install apprise, or pip install apprise)", key) from None
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise section.error(f"{key} {safe!r}: apprise knows no such URL (scheme {scheme!r})", key)
    try:
        return str(plugin.url(privacy=True))
    except Exception:  # a plugin's own formatting must not make a good route unusable
        return safe


def _one_of(section: _Section, secrets: _SecretFiles, key: str, file_key: str) -> Optional[str]:
    if key in section.values and file_key in section.values:
        raise section.error(f"give {key} or {file_key}, not both", file_key)
    return secrets.read(section, file_key) if file_key in section.values else section.text(key)


def _key_of(section: _Section, key: str) -> str:
    return key if key in section.values else f"{key}-file"


def _events(section: _Section) -> FrozenSet[str]:
    listed = section.items("events") or DEFAULT_EVENTS
    for name in listed:
        if name.lower() not in events.KINDS:
            raise section.error(f"unknown event {name!r} (events: {', '.join(events.KINDS)})",
                                "events")
    return frozenset(name.lower() for name in listed)


def _priority(section: _Section, sink: str) -> Optional[str]:
    value = section.text("priority")
    if value is None:
        return None
    if sink != NTFY:
        raise section.error("priority applies to ntfy routes only", "priority")
    if value.lower() not in NTFY_PRIORITIES:
        raise section.error(f"priority must be 1 to 5 or min, low, default, high, max, urgent, "
                            f"not {value!r}", "priority")
    return value.lower()


def _tags(section: _Section, sink: str) -> Tuple[str, ...]:
    tags = section.items("tags")
    if tags is None:
        return ()
    if sink != NTFY:
        raise section.error("tags apply to ntfy routes only", "tags")
    return tags


def _smtp(section: _Section, secrets: _SecretFiles) -> SmtpSettings:
    hint = " (the password comes from password-file)" if "password" in section.values else ""
    section.check_keys(SMTP_KEYS, hint)
    mode = (section.text("starttls") or "auto").lower()
    if mode not in STARTTLS_MODES:
        raise section.error(f"starttls must be auto, yes or no, not {mode!r}", "starttls")
    username = section.text("username")
    password = secrets.read(section, "password-file")
    if password is not None and username is None:
        raise section.error("password-file without username", "password-file")
    return SmtpSettings(
        host=section.text("host") or "localhost",
        port=section.integer("port", 25, 1, 65535),
        sender=section.text("from"),
        username=username, password=password, starttls=STARTTLS_MODES[mode],
    )


__all__ = ["RouteError", "Route", "RouteConfig", "SmtpSettings", "load", "parse", "redact"]
