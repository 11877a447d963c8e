"""NeighbourRows: item CF's and EASE's co-occurrence rows, as arrays with a place per neighbour."""

from __future__ import annotations

import pickle
import random

import numpy as np

from models.base import UserState
from models.cf import ItemCooccurrence
from models.common import FLOOR
from models.neighbours import NeighbourRows


def dict_rows(rows: NeighbourRows) -> list[dict[int, float]]:
    return [
        dict(zip(rows.keys(i).tolist(), rows.values(i).tolist(), strict=True))
        for i in range(len(rows))
    ]


def test_counts_and_order_are_those_of_a_dict_per_row() -> None:
    rng = random.Random(3)
    rows, expected = NeighbourRows(), [{} for _ in range(30)]
    rows.extend_to(30)
    for _ in range(2000):
        i, j = rng.sample(range(30), 2)
        w = rng.random()
        sizes = rows.add_pair(i, j, w)
        expected[i][j] = expected[i].get(j, 0.0) + w
        expected[j][i] = expected[j].get(i, 0.0) + w
        assert sizes == (len(expected[i]), len(expected[j]))
    got = dict_rows(rows)
    assert got == expected
    assert [list(row) for row in got] == [list(row) for row in expected]  # first-counted order
    assert all(rows.get(i, j) == c for i, row in enumerate(expected) for j, c in row.items())


def test_gather_reads_rows_one_after_the_other() -> None:
    rows = NeighbourRows.of_dicts([{2: 1.0, 1: 0.5}, {}, {0: 3.0}])
    sizes, keys, values = rows.gather([2, 0, 1, 0])
    assert sizes.tolist() == [1, 2, 0, 2]
    assert keys.tolist() == [0, 2, 1, 2, 1] and values.tolist() == [3.0, 1.0, 0.5, 1.0, 0.5]
    sizes, keys, values = rows.gather([])
    assert len(sizes) == len(keys) == len(values) == 0


def test_keep_remove_and_scale_edit_rows_as_dicts_would() -> None:
    rows = NeighbourRows.of_dicts([{1: 1.0, 2: 2.0, 3: 3.0}, {0: FLOOR * 1.5, 2: 4.0}])
    rows.keep(0, [3, 1])
    rows.remove(1, 7)  # not there: nothing changes
    rows.remove(0, 3)
    assert dict_rows(rows) == [{1: 1.0}, {0: FLOOR * 1.5, 2: 4.0}]
    rows.scale(0.5, FLOOR)  # the entry that falls to the floor goes
    assert dict_rows(rows) == [{1: 0.5}, {2: 2.0}]
    rows.add_pair(1, 0, 1.0)  # a row edited above still counts and places entries
    assert dict_rows(rows) == [{1: 1.5}, {2: 2.0, 0: 1.0}]
    rows.clear(1)
    assert rows.size(1) == 0 and rows.get(1, 2) == 0.0


def test_rows_pickle_without_their_places_and_count_on_after_loading() -> None:
    rows = NeighbourRows.of_dicts([{2: 1.0, 1: 0.5}, {0: 0.5}, {0: 1.0}])
    blob = pickle.dumps(rows)
    assert b"_at" not in blob
    loaded = pickle.loads(blob)
    assert dict_rows(loaded) == dict_rows(rows)
    assert loaded.add_pair(0, 1, 1.0) == (2, 1) and loaded.get(0, 1) == 1.5 == loaded.get(1, 0)


def test_arrays_read_from_a_row_leave_it_free_to_grow() -> None:
    rows = NeighbourRows.of_dicts([{1: 1.0}, {0: 1.0}, {}])
    held = (rows.keys(0), rows.values(0), rows.gather([0, 1]))
    rows.add_pair(0, 2, 1.0)  # a view of the row's buffer would refuse this (BufferError)
    rows.scale(2.0, FLOOR)
    assert held[0].tolist() == [1] and rows.keys(0).tolist() == [1, 2]


def test_a_checkpoint_with_dict_rows_restores_to_the_same_model() -> None:
    rng = random.Random(5)
    model = ItemCooccurrence(max_neighbors=4, window=5)
    users = {f"u{u}": UserState(f"u{u}") for u in range(40)}
    for _ in range(3000):
        user = users[f"u{rng.randrange(40)}"]
        item = f"i{rng.randrange(60)}"
        model.learn_one(user, item, ts=0.0)
        user.observe(item, ts=0.0)
    old = dict(model.__dict__, _co=dict_rows(model._co))  # as models pickled rows before
    restored = ItemCooccurrence.__new__(ItemCooccurrence)
    restored.__setstate__(pickle.loads(pickle.dumps(old)))
    assert dict_rows(restored._co) == dict_rows(model._co)
    for user in users.values():
        assert restored.recommend(user, k=10) == model.recommend(user, k=10)
    again = pickle.loads(pickle.dumps(restored))  # and pickles in the new form
    assert isinstance(again._co, NeighbourRows)
    assert np.array_equal(again._co.keys(3), model._co.keys(3))
