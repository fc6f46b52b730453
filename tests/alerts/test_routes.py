"""The route file: every key, defaults, secrets from files and credentials, every bad input
in one line naming file, line, route and problem, and redaction of URLs."""

from __future__ import annotations

import sys

import pytest

from progressistad.alerts import routes
from progressistad.alerts.redaction import redact
from progressistad.alerts.routes import RouteError


def test_a_route_with_every_key(config, tmp_path):
    (tmp_path / "ntfy.token").write_text("# the token\ntk_0123456789abcdef\n")
    parsed = config("""
        [phone]
        # where to send
        url = ntfy://ntfy.lan/training
        ; which transitions
        events = error, stalled, Overdue
        match = train:*, backup
        min-duration = 60
        group-wait = 2.5
        rate-limit = 5
        token-file = ntfy.token
        priority = High
        tags = warning, skull
        children = yes
    """)
    (route,) = parsed.routes
    assert route.name == "phone" and route.sink == routes.NTFY and route.line == 1
    assert route.url == "ntfy://ntfy.lan/training"
    assert route.events == {"error", "stalled", "overdue"}
    assert route.match == ("train:*", "backup")
    assert (route.min_duration, route.group_wait, route.rate_limit) == (60, 2.5, 5)
    assert route.token == "tk_0123456789abcdef"
    assert route.priority == "high" and route.tags == ("warning", "skull") and route.children


def test_defaults_and_url_schemes(config):
    parsed = config("""
        [hook]
        url = https://example.com/hook
        [plain]
        url = http://10.0.0.5:8080/x
        [s]
        url = slack+https://hooks.slack.com/services/T1/B2/abc
        [d]
        url = discord+https://discord.com/api/webhooks/1/abc
        [m]
        url = mailto:ops@example.com, dev@example.com
        [n]
        url = ntfys://ntfy.sh/mytopic
    """)
    sinks = {route.name: route.sink for route in parsed.routes}
    assert sinks == {"hook": "webhook", "plain": "webhook", "s": "slack", "d": "discord",
                     "m": "mail", "n": "ntfy"}
    hook = parsed.get("hook")
    assert hook.events == {"error", "stalled"} and hook.match == ("*",)
    assert (hook.min_duration, hook.group_wait, hook.rate_limit) == (0, 10, 20)
    assert not hook.children and hook.token is None
    assert parsed.smtp == routes.SmtpSettings()
    assert [route.line for route in parsed.routes] == [1, 3, 5, 7, 9, 11]


def test_a_url_may_hold_a_hash_and_comments_are_whole_lines(config):
    parsed = config("""
        [hook]
        url = https://example.com/hook?a=1#section ; not a comment
    """)
    assert parsed.get("hook").url == "https://example.com/hook?a=1#section ; not a comment"


def test_smtp_section(config, tmp_path):
    (tmp_path / "smtp.pw").write_text("s3cret\n")
    parsed = config("""
        [mail]
        url = mailto:ops@example.com
        [smtp]
        host = mail.lan
        port = 587
        from = progress@lan
        username = progress
        password-file = smtp.pw
        starttls = yes
    """)
    assert parsed.smtp == routes.SmtpSettings(host="mail.lan", port=587, sender="progress@lan",
                                              username="progress", password="s3cret",
                                              starttls="yes")
    assert "s3cret" not in repr(parsed.smtp) and "s3cret" not in "\n".join(parsed.describe())


def test_secret_files_may_be_systemd_credentials(config, tmp_path):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "hook-url").write_text("https://example.com/T0123456789abcdefXYZ\n")
    (credentials / "ntfy-token").write_text("tk_from_credential\n")
    parsed = config("""
        [hook]
        url-file = hook-url
        [phone]
        url = ntfy://ntfy.lan/t
        token-file = ntfy-token
    """, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert parsed.get("hook").url == "https://example.com/T0123456789abcdefXYZ"
    assert parsed.get("hook").safe_url == "https://example.com/***"
    assert parsed.get("phone").token == "tk_from_credential"


def test_a_file_of_no_routes_is_fine(config):
    assert len(config("# nothing yet\n")) == 0


def test_describe_redacts_every_secret(config):
    parsed = config("""
        [hook]
        url = https://user:pa55word@example.com/hook?token=abc123
        token = tk_abcdef
        [s]
        url = slack+https://hooks.slack.com/services/T1/B2/sekrit
    """)
    text = "\n".join(parsed.describe()) + repr(parsed)
    for secret in ("pa55word", "user:", "abc123", "tk_abcdef", "sekrit", "T1/B2"):
        assert secret not in text
    assert "token = (set, redacted)" in text


BAD = [
    ("[phone]\nurl = ntfy://h/t\nevnts = error\n", 3, "phone",
     "unknown key 'evnts' (keys: url, url-file, events, match, min-duration, group-wait, "
     "rate-limit, token, token-file, priority, tags, children)"),
    ("[phone]\nurl = ntfy://h/t\nevents = error, eror\n", 3, "phone",
     "unknown event 'eror' (events: close, error, stalled, resumed, overdue)"),
    ("[a]\nurl = https:///path\n", 2, "a", "url 'https:///path': no host"),
    ("[a]\nurl = example.com/hook\n", 2, "a", "url '***' is not a URL (no scheme)"),
    ("[a]\nurl = http://h:99999/x\n", 2, "a",
     "url 'http://***' is not a URL: Port out of range 0-65535"),
    ("[a]\nurl = ntfy://h/a/b\n", 2, "a",
     "url 'ntfy://h/a/b': an ntfy URL is ntfy://host/topic "
     "(topic: letters, digits, '-' and '_')"),
    ("[a]\nurl = mailto:nobody\n", 2, "a",
     "url 'mailto:nobody': mailto: needs one or more addresses (mailto:ops@example.com)"),
    ("[a]\nurl = slack+https://hooks.slack.com\n", 2, "a",
     "url 'slack+https://hooks.slack.com': no webhook path"),
    ("[a]\nevents = error\n", 1, "a", "no url (or url-file)"),
    ("[a]\nurl = https://h/x\nurl-file = f\n", 3, "a", "give url or url-file, not both"),
    ("[a]\nurl =\n", 2, "a", "url is empty"),
    ("[a]\nurl = https://h/x\nmin-duration = -1\n", 3, "a",
     "min-duration must be a number of seconds >= 0, not '-1'"),
    ("[a]\nurl = https://h/x\ngroup-wait = soon\n", 3, "a",
     "group-wait must be a number of seconds >= 0, not 'soon'"),
    ("[a]\nurl = https://h/x\nrate-limit = 1.5\n", 3, "a",
     "rate-limit must be a whole number from 0 to 100000, not '1.5'"),
    ("[a]\nurl = https://h/x\nchildren = maybe\n", 3, "a",
     "children must be true or false, not 'maybe'"),
    ("[a]\nurl = https://h/x\npriority = high\n", 3, "a", "priority applies to ntfy routes only"),
    ("[a]\nurl = https://h/x\ntags = x\n", 3, "a", "tags apply to ntfy routes only"),
    ("[a]\nurl = ntfy://h/t\npriority = loud\n", 3, "a",
     "priority must be 1 to 5 or min, low, default, high, max, urgent, not 'loud'"),
    ("[a]\nurl = mailto:x@y\ntoken = t\n", 3, "a", "a token applies to ntfy and webhook routes only"),
    ("[a]\nurl = ntfy://h/t\ntoken = t\ntoken-file = f\n", 4, "a",
     "give token or token-file, not both"),
    ("[a]\nurl = ntfy://h/t\ntoken-file = missing.token\n", 3, "a",
     "token-file 'missing.token': cannot read it: No such file or directory"),
    ("[a]\nurl = ntfy://h/t\nmatch = ,\n", 3, "a", "match lists nothing"),
    ("[a b]\nurl = ntfy://h/t\n", 1, "a b",
     "a route name is letters, digits, '_', '.' and '-' (at most 64)"),
    ("[a]\nurl = ntfy://h/t\n[a]\nurl = ntfy://h/u\n", 3, "a", "section given twice"),
    ("[a]\nurl = ntfy://h/t\nURL = ntfy://h/u\n", 3, "a", "key 'url' given twice"),
    ("url = ntfy://h/t\n", 1, None, "a key before any [route] section header"),
    ("[a]\nurl = ntfy://h/t\njust words\n", 3, None,
     "not a `key = value` line, a [section] header or a comment"),
    ("[smtp]\nhost = h\npassword = p\n", 3, "smtp",
     "unknown key 'password' (the password comes from password-file) "
     "(keys: host, port, from, username, password-file, starttls)"),
    ("[smtp]\nport = 0\n", 2, "smtp", "port must be a whole number from 1 to 65535, not '0'"),
    ("[smtp]\nstarttls = sometimes\n", 2, "smtp",
     "starttls must be auto, yes or no, not 'sometimes'"),
]


@pytest.mark.parametrize("text, line, route, problem", BAD, ids=[b[3][:40] for b in BAD])
def test_each_bad_input_is_one_line_naming_file_line_route_and_problem(
        route_file, text, line, route, problem):
    path = route_file(text)
    with pytest.raises(RouteError) as caught:
        routes.load(path, {})
    error = caught.value
    assert (error.path, error.line, error.route, error.problem) == (path, line, route, problem)
    where = f"route [{route}]: " if route else ""
    assert str(error) == f"notify config {path}:{line}: {where}{problem}"
    assert "\n" not in str(error)


def test_an_unreadable_file(tmp_path):
    path = str(tmp_path / "absent.conf")
    with pytest.raises(RouteError) as caught:
        routes.load(path, {})
    assert str(caught.value) == f"notify config {path}: cannot read it: No such file or directory"


def test_a_bad_url_is_redacted_in_the_error(route_file):
    path = route_file("[a]\nurl = https://user:hunter2@/path?token=abc\n")
    with pytest.raises(RouteError) as caught:
        routes.load(path, {})
    assert "hunter2" not in str(caught.value) and "abc" not in str(caught.value)
    assert str(caught.value).endswith("url 'https://***@/path?token=***': no host")


def test_a_scheme_that_needs_apprise_when_it_is_missing(route_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)
    path = route_file("[chat]\nurl = tgram://123456:ABCDEF/987\n")
    with pytest.raises(RouteError) as caught:
        routes.load(path, {})
    assert str(caught.value) == (
        f"notify config {path}:2: route [chat]: scheme 'tgram' needs the apprise package, "
        "which is not installed (apt install apprise, or pip install apprise)")


def test_a_scheme_apprise_does_not_know(route_file):
    pytest.importorskip("apprise")
    path = route_file("[x]\nurl = nosuchscheme://secret@host/x\n")
    with pytest.raises(RouteError) as caught:
        routes.load(path, {})
    assert str(caught.value) == (f"notify config {path}:2: route [x]: url 'nosuchscheme://***': "
                                 "apprise knows no such URL (scheme 'nosuchscheme')")


def test_apprise_routes_show_apprise_s_private_form(config):
    pytest.importorskip("apprise")
    parsed = config("[j]\nurl = json://user:hunter2@127.0.0.1:9/x\n")
    route = parsed.get("j")
    assert route.sink == routes.APPRISE and "hunter2" not in route.safe_url
    assert route.safe_url.startswith("json://")


@pytest.mark.parametrize("url, safe", [
    ("https://example.com/hook", "https://example.com/hook"),
    ("https://user:pw@example.com/hook", "https://***@example.com/hook"),
    ("https://token@example.com:8443/hook", "https://***@example.com:8443/hook"),
    ("https://example.com/h?token=abc&x=1", "https://example.com/h?token=***&x=1"),
    ("https://example.com/h?apikey=abc&sig=s&auth=a", "https://example.com/h?apikey=***&sig=***&auth=***"),
    ("https://example.com/h?x=0123456789abcdefXYZ", "https://example.com/h?x=***"),
    ("https://example.com/hooks/0123456789abcdefghij/x", "https://example.com/hooks/***/x"),
    ("https://example.com/h#frag", "https://example.com/h#***"),
    ("slack+https://hooks.slack.com/services/T1/B2/XX", "slack+https://hooks.slack.com/services/***"),
    ("discord+https://discord.com/api/webhooks/1/tok", "discord+https://discord.com/api/webhooks/***"),
    ("slack+https://chat.lan/hooks/abc", "slack+https://chat.lan/***"),
    ("ntfy://ntfy.lan/topic", "ntfy://ntfy.lan/topic"),
    ("ntfys://u:p@ntfy.sh/topic?auth=tk", "ntfys://***@ntfy.sh/topic?auth=***"),
    ("mailto:ops@example.com", "mailto:ops@example.com"),
    ("tgram://123456:ABC/chat", "tgram://***"),
    ("not a url", "***"),
])
def test_redaction(url, safe):
    assert redact(url) == safe


def test_redaction_of_a_url_from_a_file_shows_only_its_host():
    assert redact("https://u:p@hooks.lan:8080/secret/path?q=1", path_is_secret=True) == \
        "https://***@hooks.lan:8080/***?***"
