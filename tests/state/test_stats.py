"""state/stats.py: BatchStats counts a batch, sums batches and round-trips the Redis hash."""

from __future__ import annotations

import pytest

from state.stats import BatchStats


def a_batch() -> BatchStats:
    """Three events (two warm, one a hit; one active), a dead letter, a duplicate, a user who
    arrived warm and one who moved from warm to active."""
    stats = BatchStats(dead=1, duplicates=1, recommendations=2, batches=1)
    stats.count_event("warm", hit=True)
    stats.count_event("warm", hit=False)
    stats.count_event("active", hit=False)
    stats.move_user(None, "warm")
    stats.move_user("warm", "active")
    return stats


def test_counting_events_and_moves_fills_the_totals_and_the_phase_tables():
    stats = a_batch()
    assert (stats.events, stats.hits, stats.records) == (3, 1, 5)
    assert stats.events_by_phase == {"warm": 2, "active": 1}
    assert stats.hits_by_phase == {"warm": 1, "active": 0}
    assert stats.users_moved == {"warm": 0, "active": 1}


def test_a_user_staying_in_a_phase_moves_nothing():
    stats = BatchStats()
    stats.move_user("active", "active")
    assert stats.users_moved == {}


def test_counters_round_trip_through_the_flat_redis_fields():
    stats = a_batch()
    flat = stats.counters()
    assert flat == {
        "events": 3,
        "dead": 1,
        "duplicates": 1,
        "hits": 1,
        "recommendations": 2,
        "batches": 1,
        "events:warm": 2,
        "events:active": 1,
        "hits:warm": 1,
        "users:active": 1,
    }  # zeros (replayed, relogged, hits:active, users:warm) are left out
    back = BatchStats.from_counters(flat)
    assert back.counters() == flat
    assert (back.events, back.records) == (stats.events, stats.records)
    # zeros were not written, so they do not come back: only non-zero entries are equal
    assert back.events_by_phase == stats.events_by_phase
    assert back.users_moved == {"active": 1}


def test_from_counters_reads_redis_strings_and_ignores_fields_it_does_not_know():
    flat = {"events": "4", "hits:cold": "2", "users:cold": "-1", "unknown": 9, "bogus:warm": 1}
    stats = BatchStats.from_counters(flat)
    assert stats.events == 4
    assert stats.hits_by_phase == {"cold": 2}
    assert stats.users_moved == {"cold": -1}
    assert stats.counters() == {"events": 4, "hits:cold": 2, "users:cold": -1}


def test_the_sum_of_batches_adds_every_counter_and_merges_the_phase_tables():
    a, b = a_batch(), BatchStats(replayed=2, relogged=1, events=1)
    b.count_event("cold", hit=True)
    b.move_user("active", "established")
    total = a + b
    assert (total.events, total.replayed, total.relogged, total.hits) == (5, 2, 1, 2)
    assert total.records == a.records + b.records
    assert total.events_by_phase == {"warm": 2, "active": 1, "cold": 1}
    assert total.users_moved == {"warm": 0, "active": 0, "established": 1}
    assert total.counters() == {
        k: a.counters().get(k, 0) + b.counters().get(k, 0)
        for k in a.counters().keys() | b.counters().keys()
        if a.counters().get(k, 0) + b.counters().get(k, 0)
    }


def test_adding_leaves_both_operands_unchanged():
    a, b = a_batch(), a_batch()
    before = (a.counters(), b.counters())
    total = a + b
    total.count_event("warm", hit=True)
    assert (a.counters(), b.counters()) == before


@pytest.mark.parametrize("n", [0, 1, 7])
def test_a_sum_of_empty_batches_is_empty(n: int):
    total = BatchStats()
    for _ in range(n):
        total = total + BatchStats()
    assert total.counters() == {} and total.records == 0
