"""Configuration from dicts and temporary files: precedence, sources, bad values, tokens."""

from __future__ import annotations

import os
import re

import pytest

from progressistad.daemon.config import (
    OPTIONS, ConfigError, Settings, format_config, parse_config, reloadable_changes,
)


def parse(argv=(), env=None, default_config_file="/nonexistent/progressistad.conf",
          default_notify_config="/nonexistent/notify.conf"):
    return parse_config(list(argv), dict(env or {}), default_config_file=default_config_file,
                        default_notify_config=default_notify_config)


@pytest.fixture
def conf(tmp_path):
    """Write a config file from lines and return its path."""
    def write(*lines, name="progressistad.conf"):
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return str(path)
    return write


def test_defaults_come_from_settings_and_say_default():
    parsed = parse()
    assert parsed.settings == Settings()
    assert set(parsed.sources.values()) == {"default"}


def test_flag_beats_variable_beats_file_beats_default(conf):
    path = conf("port = 1111", "retention-seconds = 30", "stale-seconds: 7", "# a comment",
                "max-tasks 50")
    env = {"PROGRESSISTA_PORT": "2222", "PROGRESSISTA_RETENTION_SECONDS": "40"}
    parsed = parse(["--config", path, "--port", "3333"], env)
    s = parsed.settings
    assert (s.port, s.retention_seconds, s.stale_seconds, s.max_tasks, s.cleanup_interval) == \
        (3333, 40.0, 7.0, 50, 5.0)
    assert parsed.sources["port"] == "flag --port"
    assert parsed.sources["retention-seconds"] == "variable PROGRESSISTA_RETENTION_SECONDS"
    assert parsed.sources["stale-seconds"] == f"file {path}:3"
    assert parsed.sources["max-tasks"] == f"file {path}:5"
    assert parsed.sources["cleanup-interval"] == "default"
    assert s.config_file == path


def test_every_option_has_flag_variable_and_file_key(conf):
    for option in OPTIONS:
        assert option.flag == "--" + option.name
        assert option.env_var == "PROGRESSISTA_" + option.name.upper().replace("-", "_")
    path = conf("trust-proxy = yes", "allow-origins = https://a.example/, https://b.example",
                "base-path = /dash/", "log-level = DEBUG", "storage-path = /var/lib/x.json")
    s = parse(["--config", path]).settings
    assert s.trust_proxy is True
    assert s.allow_origins == ("https://a.example", "https://b.example")
    assert (s.base_path, s.log_level, s.storage_path) == ("/dash", "debug", "/var/lib/x.json")


def test_config_file_from_variable_and_default_location(conf):
    path = conf("port = 4444")
    assert parse(env={"PROGRESSISTA_CONFIG": path}).settings.port == 4444
    assert parse(default_config_file=path).settings.port == 4444
    # an empty PROGRESSISTA_CONFIG turns the default file off
    assert parse(env={"PROGRESSISTA_CONFIG": ""}, default_config_file=path).settings.port == 8000


def test_notify_config_from_flag_variable_and_the_default_file_when_it_exists(conf):
    routes = conf("[phone]", "url = ntfy://ntfy.lan/t", name="notify.conf")
    assert parse().settings.notify_config is None
    defaulted = parse(default_notify_config=routes)
    assert defaulted.settings.notify_config == routes
    assert defaulted.sources["notify-config"] == "default (the file exists)"
    # an empty PROGRESSISTA_NOTIFY_CONFIG turns the default file off
    off = parse(env={"PROGRESSISTA_NOTIFY_CONFIG": ""}, default_notify_config=routes)
    assert off.settings.notify_config is None
    assert parse(["--notify-config", "/x/n.conf"], default_notify_config=routes) \
        .settings.notify_config == "/x/n.conf"


def test_stale_factor_public_url_and_credentials_directory():
    s = parse(["--stale-factor", "10", "--public-url", "https://progress.lan/"],
              {"CREDENTIALS_DIRECTORY": "/run/credentials/x"}).settings
    assert (s.stale_factor, s.stale_min_seconds, s.public_url, s.credentials_directory) == \
        (10.0, 60.0, "https://progress.lan/", "/run/credentials/x")
    for argv, expected in ((["--stale-factor", "-1"], "--stale-factor '-1' from flag"),
                           (["--stale-factor", "nan"], "expected a number >= 0"),
                           (["--stale-min-seconds", "x"], "--stale-min-seconds 'x'"),
                           (["--public-url", "ftp://x/"], "expected http(s)://host"),
                           (["--public-url", "https://x/?a=1"], "--public-url")):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            parse(argv)


def test_connection_limits_and_timeouts_from_flag_variable_and_file(conf):
    defaults = parse().settings
    assert (defaults.max_connections, defaults.idle_connection_timeout, defaults.body_timeout,
            defaults.ws_heartbeat_interval) == (0, 75.0, 30.0, 5.0)
    path = conf("idle-connection-timeout = 12", "ws-heartbeat-interval = 0.5")
    s = parse(["--config", path, "--max-connections", "500"],
              {"PROGRESSISTA_BODY_TIMEOUT": "7.5"}).settings
    assert (s.max_connections, s.idle_connection_timeout, s.body_timeout,
            s.ws_heartbeat_interval) == (500, 12.0, 7.5, 0.5)


def test_switch_flag_without_value_and_false_in_variable():
    assert parse(["--trust-proxy"]).settings.trust_proxy is True
    assert parse(env={"PROGRESSISTA_TRUST_PROXY": "false"}).settings.trust_proxy is False


@pytest.mark.parametrize("argv, env, lines, expected", [
    (["--port", "abc"], {}, None, "--port 'abc' from flag --port: not an integer"),
    ([], {"PROGRESSISTA_PORT": "abc"}, None,
     "--port 'abc' from variable PROGRESSISTA_PORT: not an integer"),
    ([], {"PROGRESSISTA_PORT": "70000"}, None, "expected an integer from 0 to 65535"),
    (["--cleanup-interval=-1"], {}, None,
     "--cleanup-interval '-1' from flag --cleanup-interval: expected a number of seconds > 0"),
    ([], {"PROGRESSISTA_STALE_SECONDS": "nan"}, None, "expected a number of seconds >= 0"),
    ([], {}, ["", "retention-seconds = soon"],
     "--retention-seconds 'soon' from file {path}:2: not a number of seconds"),
    ([], {}, ["port = 1", "retention = 5"], "unknown key 'retention' in {path}:2"),
    ([], {}, ["trust-proxy = maybe"], "--trust-proxy 'maybe' from file {path}:1"),
    ([], {}, ["log-level = loud"], "expected one of debug, info, warning, error, critical"),
    ([], {}, ["port"], "{path}:1: port needs a value"),
    (["--bogus"], {}, None, "unrecognized arguments: --bogus"),
    (["--max-connections", "-1"], {}, None, "expected an integer >= 0"),
    ([], {"PROGRESSISTA_BODY_TIMEOUT": "0"}, None, "expected a number of seconds > 0"),
    ([], {}, ["ws-heartbeat-interval = never"], "not a number of seconds"),
    (["--static-path", "/nonexistent/dash"], {}, None,
     "--static-path '/nonexistent/dash' from flag --static-path: not a directory"),
])
def test_bad_values_name_option_value_and_source(conf, argv, env, lines, expected):
    path = conf(*lines) if lines is not None else None
    if path:
        argv = ["--config", path] + argv
    with pytest.raises(ConfigError) as error:
        parse(argv, env)
    message = str(error.value)
    assert expected.format(path=path) in message
    assert "\n" not in message


def test_unreadable_config_file_names_it_and_its_source(tmp_path):
    missing = str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError, match=r"--config '.*nope.conf' from flag --config: cannot read"):
        parse(["--config", missing])
    with pytest.raises(ConfigError, match="from variable PROGRESSISTA_CONFIG: cannot read"):
        parse(env={"PROGRESSISTA_CONFIG": missing})
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"port = 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="binary.conf' from flag --config: cannot read it"):
        parse(["--config", str(binary)])


def test_api_tokens_overrides_api_token_and_files_add(tmp_path, conf):
    env = {"PROGRESSISTA_API_TOKEN": "single", "PROGRESSISTA_API_TOKENS": "w1, w2",
           "PROGRESSISTA_READ_TOKENS": "r1"}
    assert parse(env=env).settings.api_tokens == ("w1", "w2")
    assert parse(env={"PROGRESSISTA_API_TOKEN": "single"}).settings.api_tokens == ("single",)
    write_file = tmp_path / "write.tokens"
    write_file.write_text("# operators\nw3\n\n  w4 , w5 \n")
    read_file = tmp_path / "read.tokens"
    read_file.write_text("r2\n")
    s = parse(["--api-tokens-file", str(write_file), "--read-tokens-file", str(read_file)],
              env).settings
    assert s.api_tokens == ("w1", "w2", "w3", "w4", "w5")
    assert s.read_tokens == ("r1", "r2")


def test_systemd_credentials_add_tokens(tmp_path):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "api-tokens").write_text("cw1\ncw2\n")
    (credentials / "read-tokens").write_text("cr1\n")
    parsed = parse(env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert parsed.settings.api_tokens == ("cw1", "cw2")
    assert parsed.settings.read_tokens == ("cr1",)
    assert parse(env={"CREDENTIALS_DIRECTORY": str(tmp_path)}).settings.api_tokens == ()


def test_bad_tokens_files_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="--api-tokens-file .* from flag --api-tokens-file: "
                                          "cannot read it"):
        parse(["--api-tokens-file", str(tmp_path / "missing")])
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="holds no token"):
        parse(env={"PROGRESSISTA_READ_TOKENS_FILE": str(empty)})


def test_print_config_redacts_every_token(tmp_path, conf):
    tokens_file = tmp_path / "t"
    tokens_file.write_text("file-secret\n")
    path = conf("api-token = file-single-secret")
    parsed = parse(["--config", path, "--read-tokens", "flag-secret", "--print-config",
                    "--api-tokens-file", str(tokens_file)],
                   {"PROGRESSISTA_API_TOKENS": "env-secret"})
    assert parsed.print_config
    text = format_config(parsed)
    assert "secret" not in text.replace("redacted", "")
    assert "api-tokens = (set, redacted)  # variable PROGRESSISTA_API_TOKENS" in text
    assert f"api-token = (set, redacted)  # file {path}:1" in text
    assert "read-tokens = (set, redacted)  # flag --read-tokens" in text
    assert "effective tokens: 2 read-write, 1 read-only" in text
    for option in OPTIONS:
        assert f"\n{option.name} = " in text


def test_reload_takes_only_reloadable_options():
    current = Settings(port=1, retention_seconds=10.0, api_tokens=("a",))
    new = Settings(port=2, retention_seconds=20.0, api_tokens=("b",), log_level="debug")
    merged, ignored = reloadable_changes(current, new)
    assert (merged.port, merged.retention_seconds, merged.api_tokens, merged.log_level) == \
        (1, 20.0, ("b",), "debug")
    assert ignored == ["port"]
    routes = Settings(notify_config="/a", stale_factor=2.0, stale_min_seconds=5.0, public_url="x")
    merged, ignored = reloadable_changes(current, routes)
    assert (merged.notify_config, merged.stale_factor, merged.stale_min_seconds) == ("/a", 2.0, 5.0)
    assert "public_url" in ignored


def test_nothing_reads_os_environ_when_env_is_given(monkeypatch):
    monkeypatch.setitem(os.environ, "PROGRESSISTA_PORT", "9999")
    assert parse(env={}).settings.port == 8000


def test_readme_and_help_list_every_option():
    from progressistad.daemon.config import build_parser
    from tests.support import REPO

    readme = (REPO / "README.md").read_text()
    help_text = build_parser().format_help()
    for option in OPTIONS:
        assert f"`{option.flag} " in readme or f"`{option.flag}`" in readme, option.name
        assert f"`{option.env_var}`" in readme, option.env_var
        assert option.flag in help_text and option.env_var in help_text.replace("\n", " ")
