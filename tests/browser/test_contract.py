"""The dashboard takes statuses, close codes and message names from the daemon's contract module."""

from __future__ import annotations

import pytest

from progressistad import contract
from tests.contract_module import contract_values

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"

READ_MODULES = """async () => {
  const here = (name) => new URL(name, location.href).href;
  const served = await import(here('contract.js'));
  const tasks = await import(here('tasks.js'));
  return {
    exported: Object.fromEntries(Object.entries(served)),
    frozen: Object.isFrozen(served.STATUSES),
    statuses: tasks.STATUSES,
    buckets: Object.fromEntries(tasks.STATUSES.map((status) => [status, tasks.bucketOf({ status })])),
    boxes: [...document.querySelectorAll('#statuses input[name=status]')].map((box) => box.value),
  };
}"""


def test_the_page_imports_the_contract_python_defines(daemon, dashboards):
    page = dashboards.open(daemon.url + DASHBOARD)
    seen = page.evaluate(READ_MODULES)
    assert seen["exported"] == contract_values()
    assert seen["frozen"], "the page cannot change the contract it was given"
    assert sorted(seen["statuses"]) == sorted(contract.STATUSES), "the filter lists every status once"
    assert seen["boxes"] == seen["statuses"], "one checkbox per status, in the sections' order"
    assert seen["buckets"] == {
        contract.START: "active", contract.UPDATE: "active", contract.RECOVERED: "attention",
        contract.STALE: "attention", contract.ERROR: "attention", contract.CLOSE: "completed",
    }
    assert any(url.endswith("/static/contract.js") for url in dashboards.requests)
