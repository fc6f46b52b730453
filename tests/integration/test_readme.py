"""The curl examples in README.md work as written, against the real daemon."""

import re
import subprocess

import pytest

from tests.support import REPO, require_tool

pytestmark = pytest.mark.integration


def readme_curl_lines():
    text = (REPO / "README.md").read_text()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.split("  #")[0].strip() for line in joined.splitlines()
                  if line.startswith("curl ") and "127.0.0.1:8000" in line and "Bearer" not in line]
    return lines


def test_readme_has_curl_examples():
    assert len(readme_curl_lines()) >= 8


def test_readme_curl_examples_work(daemon):
    require_tool("curl")
    for line in readme_curl_lines():
        command = line.replace("127.0.0.1:8000", f"127.0.0.1:{daemon.port}")
        command = command.replace("curl -s", "curl -s -o /dev/stdout -w '\\n%{http_code}'", 1)
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (line, result.stderr)
        status = int(result.stdout.rsplit("\n", 1)[-1])
        expected_error = "n\": -1" in line
        assert (status == 400) if expected_error else (status == 200), (line, result.stdout)


def test_readme_token_example(daemon_factory):
    require_tool("curl")
    daemon = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "s3cret"})
    url = f"http://127.0.0.1:{daemon.port}/progress"
    ok = subprocess.run(["curl", "-s", "-w", "%{http_code}", "-o", "/dev/null", "-H", "Authorization: Bearer s3cret",
                         "-X", "POST", url, "-d", '{"task_id": "job"}'], capture_output=True, text=True)
    refused = subprocess.run(["curl", "-s", "-w", "%{http_code}", "-o", "/dev/null", "-X", "POST", url,
                              "-d", '{"task_id": "job"}'], capture_output=True, text=True)
    assert (ok.stdout, refused.stdout) == ("200", "401")
