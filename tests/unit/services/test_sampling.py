"""Where ``schema suggest`` starts its sample pages: cursors spread over the key range.

Pure helpers of :mod:`pipelines.services.sampling`; the reads are exercised on the
emulator by ``tests/integration/test_schema_suggest.py``.
"""

from __future__ import annotations

import random

import pytest

from pipelines.plan.splits import name_key
from pipelines.services.sampling import between, cursors


@pytest.mark.parametrize(("low", "high"), [("a", "z"), ("u001", "u999"), ("A1b", "zz9"),
                                           ("user", "user_zz"), ("é", "ü")])  # fmt: skip
def test_between_lies_between_in_firestores_order(low: str, high: str) -> None:
    points = [between(low, high, i / 10) for i in range(11)]
    keys = [name_key(f"users/{p}") for p in points]
    assert keys == sorted(keys)
    assert name_key(f"users/{low}") <= keys[0] and keys[-1] <= name_key(f"users/{high}")
    assert all("/" not in p and p for p in points)


def test_cursors_cut_the_owner_ids_of_a_collection_group_into_slices() -> None:
    rng = random.Random(7)
    found = cursors("users/a0/workouts/x", "users/z9/workouts/y", 10, rng)
    assert len(found) == 10
    assert all(c.startswith("users/") and c.count("/") == 1 for c in found)
    owners = [c.split("/")[1] for c in found]
    assert owners == sorted(owners) and len(set(owners)) == 10
    assert owners[0] < "d" and owners[-1] > "w"  # spread from one end to the other


def test_cursors_of_a_top_level_collection_cut_the_document_ids() -> None:
    found = cursors("notes/0001", "notes/9999", 4, random.Random(1))
    assert [c.split("/")[0] for c in found] == ["notes"] * 4
    assert cursors("notes/a", "notes/a", 4, random.Random(1)) == []


def test_a_group_spanning_parent_collections_is_cut_on_their_ids() -> None:
    found = cursors("admins/a/rides/r", "users/z/rides/r", 3, random.Random(2))
    assert len(found) == 3 and all(c.count("/") == 1 and c.endswith("/0") for c in found)
    keys = [name_key(c) for c in found]
    assert name_key("admins/a") <= keys[0] and keys == sorted(keys)
    assert keys[-1] <= name_key("users/z")
