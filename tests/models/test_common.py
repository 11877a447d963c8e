"""The utilities the sources share (models.common): item rows, forward decay, top-k."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from models.base import UserState
from models.common import (
    FLOOR,
    RESCALE_EXPONENT,
    add_row,
    ban,
    context_items,
    decay_factor,
    decayed_counts,
    drop_row,
    forward_boost,
    grown,
    live_rows,
    positive_evidence,
    top_items,
    top_rows,
    top_servable,
)

# -- item rows -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "fill"), [(np.float64, 0.0), (np.float32, 1e-6), (bool, 0)])
def test_arrays_grow_by_doubling_keep_their_rows_dtype_and_fill_new_slots(dtype, fill) -> None:
    a = np.ones((4, 3), dtype=dtype)
    assert grown(a, 3) is a  # room: the same array, no copy
    b = grown(a, 4, fill=fill)
    assert b.shape == (8, 3) and b.dtype == a.dtype
    assert (b[:4] == 1).all() and (b[4:] == np.asarray(fill, dtype=dtype)).all()
    assert grown(a, 20).shape == (32, 3)  # doubled until the row fits
    c = grown(np.zeros((2, 4, 5)), 4, axis=1)
    assert c.shape == (2, 8, 5)
    assert grown(np.zeros((0, 3)), 0, minimum=16).shape == (16, 3)


def test_rows_are_handed_out_in_order_marked_dead_and_renumbered() -> None:
    index: dict[str, int] = {}
    items: list[str | None] = []
    alive = np.zeros(8, dtype=bool)
    for item in "abcd":
        alive[add_row(index, items, item)] = True
    assert index == {"a": 0, "b": 1, "c": 2, "d": 3} and items == ["a", "b", "c", "d"]
    assert drop_row(index, items, alive, "b") == 1
    assert drop_row(index, items, alive, "b") is None and drop_row(index, items, alive, "z") is None
    assert items == ["a", None, "c", "d"] and "b" not in index and not alive[1] and alive[2]
    keep, live, renumbered = live_rows(items)
    assert keep.tolist() == [0, 2, 3] and live == ["a", "c", "d"]
    assert renumbered == {"a": 0, "c": 1, "d": 2}


# -- forward decay ---------------------------------------------------------------------------


def test_forward_decay_boosts_later_events_and_rescales_before_overflow() -> None:
    rescaled: list[float] = []
    boost, t0 = forward_boost(None, 100.0, 10.0, rescaled.append)
    assert (boost, t0, rescaled) == (1.0, 100.0, [])  # the first event is the reference
    assert forward_boost(t0, 130.0, 10.0, rescaled.append) == (8.0, 100.0)
    late = 100.0 - 10.0 * (RESCALE_EXPONENT + 10)
    assert forward_boost(t0, late, 10.0, rescaled.append)[0] == 2.0**-RESCALE_EXPONENT
    assert forward_boost(t0, late, 10.0, rescaled.append, min_exponent=-math.inf)[0] == 2.0**-70
    far = 100.0 + 10.0 * (RESCALE_EXPONENT + 1)
    assert forward_boost(t0, far, 10.0, rescaled.append) == (1.0, far)
    assert rescaled == [2.0 ** -(RESCALE_EXPONENT + 1)]


def test_forward_decayed_sums_rank_like_exactly_decayed_counts_across_rescales() -> None:
    rng = random.Random(0)
    half_life, sums, t0 = 5.0, {}, None  # sums: forward-decayed, in the current reference
    exact: dict[str, float] = {}  # decayed to "now" on every event
    now = 0.0

    def rescale(factor: float) -> None:
        for key in sums:
            sums[key] *= factor

    for _ in range(3000):
        step = rng.expovariate(1.0)
        now += step
        for key in exact:
            exact[key] *= 2.0 ** (-step / half_life)
        item = f"i{rng.randrange(20)}"
        boost, t0 = forward_boost(t0, now, half_life, rescale)
        sums[item] = sums.get(item, 0.0) + boost
        exact[item] = exact.get(item, 0.0) + 1.0
    assert now / half_life > 3 * RESCALE_EXPONENT  # several rescales happened
    for item, value in exact.items():
        assert sums[item] * decay_factor(t0, now, half_life) == pytest.approx(value, rel=1e-9)


def test_decayed_counts_scale_and_drop_what_fell_below_the_floor() -> None:
    assert decayed_counts({"a": 1.0, "b": 4.0 * FLOOR, "c": FLOOR}, 0.5) == {
        "a": 0.5,
        "b": 2.0 * FLOOR,
    }
    assert decay_factor(10.0, 30.0, 10.0) == 0.25 and decay_factor(10.0, 10.0, 3.0) == 1.0


@pytest.mark.parametrize(
    ("weight", "ts", "usable"),
    [
        (1.0, 0.0, True),
        (0.0, 0.0, False),
        (-1.0, 0.0, False),
        (math.nan, 0.0, False),
        (math.inf, 0.0, False),
        (1.0, math.inf, False),
        (1.0, math.nan, False),
    ],
)
def test_only_finite_positive_weights_at_finite_times_are_evidence(weight, ts, usable) -> None:
    assert positive_evidence(weight, ts) is usable


# -- top-k -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_top_rows_agrees_with_a_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 30, size=200).astype(float)  # many ties
    for k in (0, 1, 7, 50, 199, 200, 500):
        top = top_rows(scores, k)
        assert len(top) == min(k, 200) and len(set(top.tolist())) == len(top)
        assert scores[top].tolist() == sorted(scores, reverse=True)[: len(top)]
        for a, b in zip(top[:-1].tolist(), top[1:].tolist(), strict=True):  # ties: row order
            assert scores[a] > scores[b] or a < b
    distinct = rng.permutation(200).astype(float)
    expected = sorted(range(200), key=lambda r: -distinct[r])[:10]
    assert top_rows(distinct, 10).tolist() == expected
    assert top_rows(distinct, 10, ties="partition").tolist() == expected


def test_top_rows_partition_ties_keep_the_partitions_order() -> None:
    scores = np.array([1.0, 2.0, 2.0, 0.5])
    assert top_rows(scores, 4, ties="partition").tolist() == [1, 2, 0, 3]  # stable: rows 1, 2
    assert top_rows(scores, 4).tolist() == [1, 2, 0, 3]


def test_only_live_unexcluded_finite_rows_are_servable() -> None:
    scores = np.array([5.0, np.nan, 4.0, np.inf, 3.0, 2.0, -np.inf])
    alive = np.array([True, True, False, True, True, True, True, True])  # longer: grown
    top = top_servable(scores, 10, alive, {"e": 4, "x": 0}, {"e"})
    assert top.tolist() == [0, 5]
    assert top_servable(np.array([1.0, 2.0]), 0, alive, {}, ()).tolist() == []
    assert top_servable(np.array([1.0, 2.0]), 1, alive, {}, ()).tolist() == [1]


def test_top_items_are_best_first_with_ties_to_the_lower_id() -> None:
    pairs = [("b", 1.0), ("c", 2.0), ("a", 1.0), ("d", 0.5)]
    assert top_items(pairs, 3) == [("c", 2.0), ("a", 1.0), ("b", 1.0)]
    assert top_items(iter(pairs), 0) == [] and len(top_items(pairs, 10)) == 4


def test_ban_sets_only_the_indexed_items() -> None:
    scores = np.arange(4, dtype=float)
    ban(scores, {"a": 1, "b": 3}, ["b", "unknown"])
    assert scores.tolist() == [0.0, 1.0, 2.0, -math.inf]
    ban(scores, {"a": 1}, {"a"}, value=0.0)
    ban(scores, {"a": 1}, ())
    assert scores.tolist() == [0.0, 0.0, 2.0, -math.inf]


def test_context_is_the_sessions_last_distinct_items_or_the_history() -> None:
    user = UserState("u", recent=["x", "y"], session_items=["a", "b", "a", "c"])
    assert context_items(user, 3) == ["c", "a", "b"]
    assert context_items(UserState("v", recent=["x", "y", "x"]), 5) == ["x", "y"]
    assert context_items(UserState("w"), 3) == []
