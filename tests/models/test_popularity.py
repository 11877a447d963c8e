"""Decayed popularity: pure model logic, no I/O."""

from __future__ import annotations

import random

import pytest

from models.base import UserState
from models.popularity import DecayedPopularity

DAY = 24 * 3600.0


def test_in_top_counts_only_strictly_higher_items_as_ahead() -> None:
    pop = DecayedPopularity(half_life=DAY)
    user = UserState("u")
    for item in "aabbc":
        pop.learn_one(user, item, ts=0.0)
    assert pop.in_top("a", 1) and pop.in_top("b", 1)  # a tie does not push either out
    assert not pop.in_top("c", 2) and pop.in_top("c", 3)
    assert not pop.in_top("never-seen", 10)


def test_no_list_for_k_0_and_one_event_counts_at_most_max_weight() -> None:
    pop = DecayedPopularity(half_life=DAY)
    user = UserState("u")
    pop.learn_one(user, "a", ts=0.0, weight=1e308)
    pop.learn_one(user, "b", ts=0.0, weight=3.0)
    assert pop.recommend(user, k=0) == [] and pop.trending(0) == []
    assert pop.trending(2) == [("a", 10.0), ("b", 3.0)]


def test_the_item_whose_event_triggers_a_rescale_keeps_its_decayed_count() -> None:
    """Regression: that item kept its pre-rescale score (every 60 half-lives of event time)
    and so outranked every other item from then on."""
    pop = DecayedPopularity(half_life=1.0)
    user = UserState("u")
    pop.learn_one(user, "first", ts=0.0)  # the reference time
    for _ in range(3):
        pop.learn_one(user, "a", ts=59.0)
    for _ in range(4):
        pop.learn_one(user, "b", ts=60.0)
    pop.learn_one(user, "a", ts=61.0)  # exponent 61 > 60: rescale
    assert pop.score("a") == pytest.approx(3 * 2.0**-2 + 1)  # 1.75
    assert pop.score("b") == pytest.approx(4 * 2.0**-1)  # 2.0: b leads
    assert [item for item, _ in pop.trending(2)] == ["b", "a"]


def test_in_top_kept_up_to_date_says_what_counting_the_items_ahead_says() -> None:
    """``in_top`` keeps a top k as counts grow (and rebuilds it after a rescale, an eviction,
    a forgotten item or for another k): it agrees with counting the items strictly ahead."""
    rng = random.Random(3)
    pop = DecayedPopularity(half_life=50.0, capacity=40)
    user = UserState("u")
    for n in range(3000):
        item = f"i{min(int(rng.expovariate(0.1)), 60)}"
        for k in (3, 1) if n % 250 == 0 else (3,):  # k=1 now and then: a rebuild
            idx = pop._index.get(item)
            scores = pop._scores[: len(pop._items)]
            want = idx is not None and scores[idx] > 0 and (scores > scores[idx]).sum() < k
            assert pop.in_top(item, k) == want, (n, item, k)
        pop.learn_one(user, item, ts=float(n), weight=rng.choice([0.5, 1.0, 3.0]))
        if n % 500 == 499:
            pop.forget_item(item)
