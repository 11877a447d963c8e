"""The demo shop's stream (issue #17, items 6 and 7): new users keep arriving to the end, so
the phase mix keeps moving, and the users ``recstream up --demo`` follows include one that
arrives after the demo started and goes all the way to established."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from streams.tools.demo import DemoShop

THRESHOLDS = (1, 5, 20)


@pytest.mark.parametrize("n", [1_500, 30_000])
def test_new_users_keep_arriving_until_the_end_so_the_phase_mix_keeps_moving(n):
    shop = DemoShop.for_events(n)
    events = list(shop.events(n))
    first: dict[str, int] = {}
    for i, event in enumerate(events):
        first.setdefault(event["user_id"], i)
    tenth = n // 10
    arrivals = Counter(i // tenth for i in first.values())
    assert all(arrivals[d] >= 1 for d in range(10)), f"arrivals per tenth: {arrivals}"
    counts = Counter(e["user_id"] for e in events)
    established = sum(c >= THRESHOLDS[2] for c in counts.values())
    assert 0.3 * len(counts) < established < 0.9 * len(counts), (established, len(counts))
    # the last tenth still moves users between phases: some cross a threshold in it
    before = Counter(e["user_id"] for e in events[: n - tenth])
    crossed = sum(
        1 for user, c in counts.items() if any(before[user] < t <= c for t in THRESHOLDS[1:])
    )
    assert crossed >= 2, crossed


@pytest.mark.parametrize("n", [1_500, 30_000])
def test_a_followed_user_arrives_after_the_start_and_reaches_established(n):
    shop = DemoShop.for_events(n)
    followed = shop.followed(n, THRESHOLDS)
    assert len(followed) == 3 and len(set(followed)) == 3
    newcomer = followed[0]
    events = list(shop.events(n))
    seen = [i for i, e in enumerate(events) if e["user_id"] == newcomer]
    assert seen[0] >= 0.02 * n, "the newcomer must still be cold when the demo starts"
    assert len(seen) >= THRESHOLDS[2], f"{newcomer} has only {len(seen)} events"
    assert all(any(e["user_id"] == u for e in events) for u in followed)


def test_the_stream_is_deterministic_and_in_time_order():
    a = list(DemoShop(n_users=30, n_items=60, seed=5).events(500))
    b = list(DemoShop(n_users=30, n_items=60, seed=5).events(500))
    assert a == b
    assert all(x["timestamp"] <= y["timestamp"] for x, y in itertools.pairwise(a))
