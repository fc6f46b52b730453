"""README.md as written: the curl examples work against the real daemon, and the map of the tree
names every folder."""

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


def tree_map():
    """The backticked paths of the README's "Where things are" table, by row."""
    text = (REPO / "README.md").read_text()
    table = text.split("Where things are:", 1)[1].split("\n\n| Path |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ", 1) for line in table.splitlines()[1:] if line.startswith("| `")]
    return [(re.findall(r"`([^`]+)`", first), re.findall(r"`([^`]+)`", rest)) for first, rest in rows]


def tracked_files():
    """The repository's files as git has them, so that build and run leftovers do not count."""
    git = require_tool("git")
    listed = subprocess.run([git, "ls-files"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.splitlines()


def test_the_map_of_the_tree_names_every_folder():
    named = {path.rstrip("/") for paths, _ in tree_map() for path in paths}
    packages = {str(init.parent.relative_to(REPO)) for init in (REPO / "progressistad").glob("*/__init__.py")}
    top = {path.split("/")[0] for path in tracked_files() if "/" in path and not path.startswith(".")}
    top -= {"progressistad", "tests"}
    test_layers = {str(init.parent.relative_to(REPO)) for init in (REPO / "tests").glob("*/__init__.py")}
    missing = sorted((packages | top | test_layers) - named)
    assert missing == [], f"add these folders to the README's map of the tree: {missing}"


def test_every_path_the_map_names_exists():
    paths = [path for first, rest in tree_map() for path in first + rest if "/" in path or path.endswith(".py")]
    assert "progressistad/contract.py" in paths
    assert sorted(path for path in paths if not (REPO / path).exists()) == []
