"""The annotation seam of the store and of a mirror: fields served besides a task's own, kept
across events and copies, the cached entry made again when they change."""

from __future__ import annotations

import json

from progressistad import contract
from progressistad.cluster.mirror import TaskMirror
from progressistad.cluster.records import task_record
from progressistad.core.store import Changes, Task, TaskStore
from progressistad.core.wirejson import entry

T0 = 1_700_000_000.0
LATE = {"expected_duration": 60.0, "overdue": True}


def served_entry(task):
    return json.loads("{" + task.entry() + "}")[task.task_id]


def test_the_store_serves_an_annotation_until_it_is_taken_away():
    store = TaskStore()
    store.apply([{"task_id": "t", "status": "start"}], T0)
    assert set(served_entry(store.get("t"))) == set(contract.TASK_FIELDS)
    assert store.annotate("t", **LATE) == Changes(upserted={"t"})
    assert store.annotate("t", **LATE) == Changes(), "the same fields change nothing"
    assert store.annotation("t") == LATE
    assert served_entry(store.get("t"))["overdue"] is True
    store.apply([{"task_id": "t", "n": 3}], T0 + 1)
    assert store.get("t").to_wire()["expected_duration"] == 60.0, "events keep it"
    assert store.snapshot()["t"]["overdue"] is True
    assert store.annotate("t") == Changes(upserted={"t"})
    assert store.annotation("t") is None
    assert set(served_entry(store.get("t"))) == set(contract.TASK_FIELDS)
    assert store.annotate("missing", **LATE) == Changes() and store.annotation("missing") is None


def test_a_task_restored_from_its_served_form_has_no_annotation():
    store = TaskStore()
    store.apply([{"task_id": "t"}], T0)
    store.annotate("t", **LATE)
    restored = Task.from_wire(store.get("t").to_wire(), T0)
    assert "overdue" not in restored.to_wire()


class Published:
    """A copy as the shared store publishes it (the fields a mirror reads of one)."""

    def __init__(self, version, **fields):
        task = Task("t", T0)
        for name, value in fields.items():
            setattr(task, name, value)
        self.task_id = "t"
        self.version = version
        self.raw = repr(task_record(task)) + str(version)
        self._wire = task.to_wire()
        self._entry = None

    @property
    def status(self):
        return self._wire["status"]

    def to_wire(self):
        return dict(self._wire)

    def keep_telemetry(self, held):
        """Every copy here carries its whole wire form: nothing to take from `held`."""

    def entry(self):
        return entry(self.task_id, self.to_wire())

    def __eq__(self, other):
        return isinstance(other, Published) and other.raw == self.raw


def test_a_mirror_keeps_an_annotation_on_every_copy_until_removed():
    mirror = TaskMirror()
    mirror.apply([Published(1, n=1)], [])
    assert mirror.annotate("t", **LATE) == Changes(upserted={"t"})
    assert mirror.annotate("t", **LATE) == Changes()
    assert mirror.get("t").to_wire()["overdue"] is True and served_entry(mirror.get("t"))["overdue"]
    assert mirror.apply([Published(2, n=2)], []) == Changes(upserted={"t"})
    assert mirror.get("t").to_wire()["n"] == 2 and mirror.get("t").to_wire()["overdue"] is True
    assert mirror.apply([Published(1, n=9)], []) == Changes(), "an older copy is still ignored"
    assert mirror.replace_all({"t": Published(2, n=2)}) == Changes(), "an annotation is no change"
    assert mirror.snapshot()["t"]["expected_duration"] == 60.0
    assert mirror.annotate("t") == Changes(upserted={"t"})
    assert "overdue" not in mirror.get("t").to_wire() and mirror.annotation("t") is None
    mirror.annotate("t", **LATE)
    mirror.apply([], ["t"])
    assert mirror.annotation("t") is None
    mirror.apply([Published(3)], [])
    assert "overdue" not in mirror.get("t").to_wire(), "a task again after its removal starts bare"
