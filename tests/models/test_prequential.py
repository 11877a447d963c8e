"""The prequential replay in batches (``recstream evaluate --batch``): what a batch's events are
scored against, and that batches of one are the per-event protocol."""

from __future__ import annotations

import pytest

from models.base import UserState
from models.events import Event, apply_event
from models.factory import build_row
from models.prequential import prequential


def stream() -> list[Event]:
    # z takes a; then each user takes a, then b (popularity at k=1 lists "a" until seen)
    events = [Event("z", "a", 0.0)]
    for u in range(5):
        events += [Event(f"u{u}", "a", 2.0 * u + 1), Event(f"u{u}", "b", 2.0 * u + 2)]
    return events


def test_batches_of_one_are_the_per_event_protocol() -> None:
    # the reference: recommend, score, learn, one event at a time
    model, users, hits = build_row("hybrid", seed=3), {}, 0
    for event in stream():
        user = users.setdefault(event.user_id, UserState(event.user_id))
        recs = [c.item_id for c in model.recommend(user, k=2, exclude=user.seen)]
        hits += event.item_id in recs
        apply_event(model, user, event)
    result = prequential({"hybrid": build_row("hybrid", seed=3)}, stream(), k=2, batch=1)
    assert result["batch"] == 1
    assert result["results"][0]["hr"] == pytest.approx(hits / len(stream()))


def test_a_batch_is_scored_against_the_lists_ranked_before_it_is_learned() -> None:
    # One batch of everything: nothing is learned before the lists are ranked, so every list
    # is empty and nothing is a hit.
    whole = prequential({"popularity": build_row("popularity")}, stream(), k=1, batch=11)
    assert whole["results"][0]["hr"] == 0.0
    # Batches of three against a reference written out: each batch's users' lists first
    # (seen items excluded), every event of the batch scored against its user's list (a
    # user's second event too), then the batch learned.
    events = stream()
    model, users, hits = build_row("hybrid", seed=3), {}, 0
    for lo in range(0, len(events), 3):
        part = events[lo : lo + 3]
        for event in part:
            users.setdefault(event.user_id, UserState(event.user_id))
        lists = {
            uid: [c.item_id for c in model.recommend(u, k=2, exclude=u.seen)]
            for uid, u in users.items()
        }
        hits += sum(e.item_id in lists[e.user_id] for e in part)
        for event in part:
            apply_event(model, users[event.user_id], event)
    result = prequential({"hybrid": build_row("hybrid", seed=3)}, events, k=2, batch=3)
    row = result["results"][0]
    assert row["hr"] == pytest.approx(hits / len(events))
    assert row["by_phase"]["warm"]["events"] == 5  # the phase at event time, batch or not


def test_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch"):
        prequential({"popularity": build_row("popularity")}, stream(), batch=0)
