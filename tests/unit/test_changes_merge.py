"""Changes.merge (set operations, for speed) equals applying the other's upserts then removals one by one."""

from hypothesis import given, strategies as st

from progressistad.core.store import Changes

ids = st.sets(st.sampled_from("abcdefgh"))


def merged_one_by_one(base: Changes, other: Changes) -> Changes:
    result = Changes(set(base.upserted), set(base.removed))
    for task_id in other.upserted:
        result.add_upsert(task_id)
    for task_id in other.removed:
        result.add_removal(task_id)
    return result


@given(ids, ids, ids, ids)
def test_merge_matches_applying_each_change_in_order(up, removed, other_up, other_removed):
    base = Changes(set(up), set(removed))
    other = Changes(set(other_up), set(other_removed))
    expected = merged_one_by_one(base, other)
    base.merge(other)
    assert (base.upserted, base.removed) == (expected.upserted, expected.removed)


def test_merge_a_removal_after_an_upsert_wins():
    pending = Changes(upserted={"a"})
    pending.merge(Changes(removed={"a"}))
    assert (pending.upserted, pending.removed) == (set(), {"a"})
