"""patch.install()/uninstall(): every tqdm entry point reports, idempotently, and is restored."""

from __future__ import annotations

import importlib
import warnings

import pytest

from progressistad.client import patch
from tests.client.helpers import run_program, wait_task

ENTRY_POINTS = ("tqdm", "tqdm.std", "tqdm.auto", "tqdm.autonotebook", "tqdm.notebook", "tqdm.asyncio")


def _classes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: importlib.import_module(name).tqdm for name in ENTRY_POINTS}


def test_install_is_idempotent_and_uninstall_restores():
    originals = _classes()
    try:
        patch.install()
        first = _classes()
        patch.install()
        assert _classes() == first
        for name, cls in first.items():
            assert getattr(cls, "_is_progressista_remote", False), name
            assert issubclass(cls, originals[name]), name
        assert importlib.import_module("tqdm.contrib.concurrent").tqdm_auto is first["tqdm.auto"]
    finally:
        patch.uninstall()
    assert _classes() == originals
    assert not patch.installed()
    import tqdm.asyncio
    assert tqdm.asyncio.trange is tqdm.asyncio.tarange and tqdm.asyncio.tarange.__module__ == "tqdm.asyncio"
    concurrent = importlib.import_module("tqdm.contrib.concurrent")
    assert concurrent.tqdm_auto is originals["tqdm.auto"]
    defaults = getattr(getattr(concurrent, "_executor_map", None), "__kwdefaults__", None) or {}
    assert defaults.get("tqdm_class", originals["tqdm.auto"]) is originals["tqdm.auto"]


def test_install_defaults_reach_the_bars():
    try:
        patch.install(task_id="preset", push_every=9)
        import tqdm

        bar = tqdm.tqdm(total=1, disable=True)
        assert bar._remote_track.task_id == "preset" and bar._remote_track.push_every == 9
        bar.remote_detach()
        bar.close()
    finally:
        patch.uninstall()


@pytest.mark.integration
def test_each_entry_point_reports_to_the_daemon(daemon):
    done = run_program("""
        import asyncio, io, warnings
        warnings.simplefilter("ignore")
        from progressistad.client import patch
        patch.install()
        import tqdm, tqdm.std, tqdm.auto, tqdm.autonotebook, tqdm.notebook, tqdm.asyncio
        from tqdm.contrib.concurrent import thread_map, process_map
        sink = io.StringIO()
        for _ in tqdm.tqdm(range(3), task_id="ep:tqdm", file=sink): pass
        for _ in tqdm.std.tqdm(range(3), task_id="ep:std", file=sink): pass
        for _ in tqdm.trange(3, task_id="ep:trange", file=sink): pass
        for _ in tqdm.auto.tqdm(range(3), task_id="ep:auto", file=sink): pass
        for _ in tqdm.auto.trange(3, task_id="ep:auto-trange", file=sink): pass
        for _ in tqdm.autonotebook.tqdm(range(3), task_id="ep:autonotebook", file=sink): pass
        # Outside Jupyter the notebook bar cannot draw; disabled it still reports.
        for _ in tqdm.notebook.tqdm(range(3), task_id="ep:notebook", disable=True): pass
        for _ in tqdm.notebook.trange(3, task_id="ep:notebook-trange", disable=True): pass
        for _ in tqdm.asyncio.tarange(3, task_id="ep:tarange", file=sink): pass
        async def main():
            async for _ in tqdm.asyncio.tqdm(range(3), task_id="ep:asyncio", file=sink): pass
        asyncio.run(main())
        thread_map(abs, range(3), task_id="ep:thread_map", file=sink)
        if __name__ == "__main__":
            process_map(abs, range(3), task_id="ep:process_map", file=sink, max_workers=2)
    """, daemon.url)
    assert done.returncode == 0, done.stderr
    for name in ("tqdm", "std", "trange", "auto", "auto-trange", "autonotebook", "notebook",
                 "notebook-trange", "tarange", "asyncio", "thread_map", "process_map"):
        task = wait_task(daemon, f"ep:{name}", status="close")
        assert (task["n"], task["total"]) == (3, 3), name
