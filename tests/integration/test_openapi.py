"""The OpenAPI description: served without a token, covers every route, and schemathesis
finds the real daemon true to it (no 5xx, statuses, headers and bodies as described)."""

import subprocess
import sys
from pathlib import Path

import pytest

from progressistad.web import openapi
from progressistad.web.routes import routes
from progressistad.daemon.config import Settings
from progressistad.daemon.wiring import build
from tests.support import IN_CI

pytestmark = pytest.mark.integration

NOT_DESCRIBED = {"/ws", "/static/contract\\.js", "/static/(.*)", "/(favicon\\.ico)", "/?"}
"""The WebSocket, the dashboard files (the contract module among them) and the redirect to them
are not part of the JSON API."""


CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
    "ignored_auth", "unsupported_method", "missing_required_header",
])
"""Every check but positive_data_acceptance: DELETE /tasks needs status or older_than, which
OpenAPI cannot say of query parameters; the hypothesis tests cover valid events accepted."""


def schemathesis_cli() -> str:
    """The `st` command of this test environment; missing fails under CI=true, else skips."""
    command = Path(sys.executable).parent / "st"
    if command.exists():
        return str(command)
    if IN_CI:
        pytest.fail("schemathesis is not installed in this environment (requirements/test.txt)")
    pytest.skip("schemathesis is not installed in this environment")


def test_every_api_route_is_described(io_loop):
    services = io_loop.run_sync(lambda: build(Settings()))
    io_loop.run_sync(services.close)
    ctx = services.ctx
    patterns = {spec.regex.pattern.rstrip("$") for spec in routes(ctx, "static")}
    described = {path.replace("{task_id}", "(.+)").replace(".json", "\\.json")
                 for path in openapi.document()["paths"]}
    assert patterns - NOT_DESCRIBED == described


def test_openapi_json_is_public_and_follows_the_base_path(daemon_factory):
    daemon = daemon_factory(["--base-path", "/under"], env={"PROGRESSISTA_API_TOKENS": "rw-secret"})
    status, headers, document = daemon.request("GET", "/under/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert document["openapi"].startswith("3.") and document["servers"] == [{"url": "/under"}]
    assert "rw-secret" not in str(document)
    assert daemon.request("GET", "/under/tasks")[0] == 401


@pytest.mark.schemathesis
def test_schemathesis_finds_the_daemon_true_to_its_description(daemon_factory, tmp_path):
    st = schemathesis_cli()
    daemon = daemon_factory(["--max-tasks", "200"], env={
        "PROGRESSISTA_API_TOKENS": "st-write", "PROGRESSISTA_READ_TOKENS": "st-read"})
    result = subprocess.run(
        [st, "run", daemon.url + "/openapi.json", "--checks", CHECKS,
         "-H", "Authorization: Bearer st-write", "--max-examples", "25", "--seed", "20261129",
         "--workers", "1", "--request-timeout", "10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"},
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert daemon.request("GET", "/health")[0] == 200
    assert "Traceback" not in daemon.logs()
