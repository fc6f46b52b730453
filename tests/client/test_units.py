"""The `progressista tasks` table scales counts, sizes and rates exactly as the dashboard does."""

from __future__ import annotations

import json
import subprocess

from progressistad.client import units
from progressistad.client.admin import task_table
from tests.support import REPO, require_tool

VALUES = [0, 1, 5.5, 42, 999, 999.4, 999.5, 1000, 1023.5, 1024, 1125, 1536, 12345, 1.005, 0.125,
          2.5, 3000000, 237893709.9, 10 ** 9, 1.5e15, 9.99e20, -2048, None]
UNITS = [None, "", "it", "files", "B", "bytes", " Bytes ", "o", "GB"]


def _python_table():
    return {
        "count": [units.scale_count(v) for v in VALUES],
        "bytes": [units.scale_bytes(v) for v in VALUES],
        "amount": [[units.format_amount(v, u) for u in UNITS] for v in VALUES],
        "progress": [[units.format_progress(v, t, u) for u in UNITS] for v in VALUES
                     for t in (None, 4096, 3000000)],
        "rate": [[units.format_rate(v, u) for u in UNITS] for v in VALUES],
    }


JS = """
import * as f from "%s";
const values = %s, unitList = %s;
const v = (x) => x === null ? NaN : x;
console.log(JSON.stringify({
  count: values.map((x) => f.scaleCount(v(x))),
  bytes: values.map((x) => f.scaleBytes(v(x))),
  amount: values.map((x) => unitList.map((u) => f.formatAmount(v(x), u))),
  progress: values.flatMap((x) => [null, 4096, 3000000].map(
    (t) => unitList.map((u) => f.formatProgress(v(x), t, u)))),
  rate: values.map((x) => unitList.map((u) => f.formatRate(x, u))),
}));
"""


def test_python_and_the_dashboard_agree_value_for_value():
    node = require_tool("node")
    script = JS % ((REPO / "static" / "format.js").as_uri(), json.dumps(VALUES), json.dumps(UNITS))
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == _python_table()


def test_the_tasks_table_scales_units():
    table = task_table({
        "dump": {"task_id": "dump", "status": "update", "n": 3000000, "total": None, "unit": "B",
                 "rate": 237893709.9, "updated_at": 95},
        "rows": {"task_id": "rows", "status": "update", "n": 12345, "total": 100000, "unit": "rows",
                 "rate": 1536.4, "eta": 57, "updated_at": 99, "desc": "load"},
    }, now=100)
    lines = table.splitlines()
    assert "2.86 MiB" in lines[2] and "227 MiB/s" in lines[2] and "/?" not in table
    assert lines[1].split()[:7] == ["rows", "update", "12.3k/100k", "rows", "12", "1.54k", "rows/s"]
