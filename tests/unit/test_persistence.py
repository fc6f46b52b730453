"""StatePersister in-process: atomic 0600 writes, debouncing, failures and recovery, moving aside."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat

import pytest

from progressistad.web.metrics import Metrics
from progressistad.daemon.persistence.files import move_aside, write_atomically
from progressistad.daemon.persistence.persister import StatePersister
from progressistad.core.store import TaskStore

NOW = 1_700_000_000.0


def run(coroutine):
    return asyncio.run(coroutine)


async def until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def make(tmp_path, interval=0.05, name="state.json", on_health_change=None):
    store = TaskStore()
    metrics = Metrics()
    persister = StatePersister(str(tmp_path / name), interval, store, metrics, clock=lambda: NOW,
                               on_health_change=on_health_change)
    return store, metrics, persister


def apply(store, persister, *events):
    persister.on_changes(store.apply(list(events), NOW))


def saved(path):
    with open(path) as stream:
        return json.load(stream)["tasks"]


def test_write_atomically_makes_a_0600_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "s.json")
    with open(path, "w") as stream:
        stream.write("old")
    os.chmod(path, 0o644)
    write_atomically(path, ["{", "}"])
    assert open(path).read() == "{}"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["s.json"]


def test_move_aside_never_replaces_an_earlier_copy(tmp_path):
    path = tmp_path / "s.json"
    targets = []
    for content in ("one", "two"):
        path.write_text(content)
        targets.append(move_aside(str(path), NOW))
    assert targets[0] != targets[1]
    assert sorted(open(t).read() for t in targets) == ["one", "two"]
    assert not path.exists()


def test_many_changes_make_few_writes_holding_the_last_state(tmp_path):
    async def scenario():
        store, metrics, persister = make(tmp_path)
        for i in range(200):
            apply(store, persister, {"task_id": "job", "n": i})
        await until(lambda: metrics.persist.count >= 1 and persister.idle())
        assert saved(persister.path)["job"]["n"] == 199
        assert metrics.persist.count <= 3
        apply(store, persister, {"task_id": "other"})
        persister.on_changes(store.remove("job"))
        assert await persister.close()
        assert set(saved(persister.path)) == {"other"}
    run(scenario())


def test_failing_directory_is_reported_retried_and_caught_up(tmp_path):
    async def scenario():
        directory = tmp_path / "state"
        directory.mkdir()
        changes = []
        store, metrics, persister = make(
            directory, interval=0.02,
            on_health_change=lambda: changes.append(persister.health()["ok"]))
        shutil.rmtree(directory)
        apply(store, persister, {"task_id": "a", "n": 1})
        await until(lambda: metrics.persist_failures >= 1)
        assert persister.health()["ok"] is False
        assert "No such file or directory" in persister.health()["error"]
        apply(store, persister, {"task_id": "b", "n": 2})
        directory.mkdir()
        await until(lambda: persister.health()["ok"], timeout=20)
        assert set(saved(persister.path)) == {"a", "b"}
        assert changes == [False, True]
        await persister.close()
    run(scenario())


def test_corrupt_file_is_moved_aside_and_the_store_starts_empty(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"tasks": {"a": ')
    store, _, persister = make(tmp_path)
    assert persister.load() == 0
    assert len(store) == 0
    aside = [name for name in os.listdir(tmp_path) if name.startswith("state.json.corrupt-")]
    assert len(aside) == 1
    assert (tmp_path / aside[0]).read_text() == '{"tasks": {"a": '
    assert persister.health()["ok"]


def test_load_keeps_the_newest_tasks_within_max_tasks(tmp_path):
    path = tmp_path / "state.json"
    tasks = {f"t{i}": {"task_id": f"t{i}", "updated_at": NOW - 100 + i, "status": "close"}
             for i in range(10)}
    path.write_text(json.dumps({"tasks": tasks}))
    store, _, persister = make(tmp_path)
    store.max_tasks = 4
    assert persister.load() == 4
    assert sorted(task.task_id for task in store) == ["t6", "t7", "t8", "t9"]


def test_leftover_temporary_files_are_removed_at_load(tmp_path):
    (tmp_path / ".state.json.abc123.tmp").write_text("partial")
    (tmp_path / "unrelated.tmp").write_text("keep")
    _, _, persister = make(tmp_path)
    persister.load()
    assert sorted(os.listdir(tmp_path)) == ["unrelated.tmp"]


@pytest.mark.parametrize("snapshots", [False, True], ids=["alone", "entries-made-by-snapshots"])
def test_every_write_holds_exactly_the_store_though_only_changed_tasks_are_encoded(tmp_path, snapshots):
    """Loaded, updated, added and removed tasks: after each write the file is the store,
    whether the writer encodes the changed tasks or takes entries a snapshot made."""
    async def settled(metrics, persister, writes):
        await until(lambda: metrics.persist.count >= writes and persister.idle())

    async def scenario():
        store, metrics, persister = make(tmp_path)
        for i in range(5):
            apply(store, persister, {"task_id": f"t{i}", "n": i, "desc": "é\u2028"})
        assert await persister.close()
        store, metrics, persister = make(tmp_path)
        persister.load()
        steps = [
            lambda: apply(store, persister, {"task_id": "t1", "n": 50}),
            lambda: apply(store, persister, {"task_id": "new", "status": "close"}),
            lambda: persister.on_changes(store.remove("t3")),
            lambda: apply(store, persister, {"task_id": "t3", "n": 1}),
        ]
        for writes, step in enumerate(steps, start=1):
            step()
            if snapshots:
                store.snapshot_json()
            await settled(metrics, persister, writes)
            assert saved(persister.path) == json.loads(json.dumps(store.snapshot()))
        assert await persister.close()

    run(scenario())


def test_the_forms_loading_made_are_given_once_then_not_held(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"tasks": {"a": {"task_id": "a", "n": 3}}}))
    _, _, persister = make(tmp_path)
    assert persister.load() == 1
    forms = persister.take_loaded_forms()
    assert set(forms) == {"a"} and forms["a"]["n"] == 3
    assert persister.take_loaded_forms() is None
