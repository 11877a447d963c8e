"""Prequential (test-then-learn) replay of an event stream through model rows: pure, no I/O.

For each event in time order and each row (a single source or the hybrid), the user's top-k
(seen items excluded) is scored against the event's item first, and a rating event's rating is
predicted; then the row takes the event through :func:`models.events.apply_events`, exactly as
the worker does. ``recstream evaluate`` reads the data set and prints the result.

With ``batch`` > 1 the events go in batches of that many, as the worker takes them: the lists
of a batch's users are ranked together (:meth:`HybridRecommender.recommend_batch`) before the
batch is learned, each of the batch's events is scored against its user's list (and its rating
predicted) as of then, and the batch is learned in one call, so a user's second event of a
batch is scored against the list built before their first (the worker publishes a list after
each batch). ``batch=1`` is the strict per-event protocol.

>>> from models.factory import build_row
>>> events = [Event(u, item, ts=float(t)) for t, (u, item) in enumerate(
...     [("z", "a"), ("u", "a"), ("u", "b"), ("v", "a"), ("v", "b")])]
>>> result = prequential({"popularity": build_row("popularity")}, events, k=1)
>>> result["events"], result["results"][0]["hr"]  # misses: z's a (nothing learned), u's b
(5, 0.6)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.base import UserState
from models.evaluation import Scoreboard
from models.events import Event, ItemChange, apply_events, apply_item
from models.hybrid import HybridRecommender, SwitchingPolicy

__all__ = ["prequential"]


@dataclass
class _Row:
    name: str
    engine: HybridRecommender
    board: Scoreboard
    users: dict[str, UserState] = field(default_factory=dict)
    seconds: float = 0.0


def prequential(
    rows: Mapping[str, HybridRecommender],
    events: Iterable[Event],
    *,
    k: int = 10,
    thresholds: Sequence[int] = (1, 5, 20),
    history: int = 500,
    session_gap: float = 1800.0,
    catalogue: Sequence[ItemChange] = (),
    batch: int = 1,
) -> dict[str, Any]:
    """Score then learn every event in every row, in batches of ``batch`` events; the JSON-able
    result (``--json``)."""
    if batch < 1:
        raise ValueError("batch must be >= 1")
    policy = SwitchingPolicy.from_thresholds(thresholds)
    table = [_Row(name, engine, Scoreboard(name, k)) for name, engine in rows.items()]
    for row in table:
        for change in catalogue:
            apply_item(row.engine, change)
    seen_items = {c.item_id for c in catalogue if not c.deleted}
    n = 0
    started = time.perf_counter()
    for part in _batches(events, batch):
        seen_items.update(e.item_id for e in part)
        for row in table:
            t0 = time.perf_counter()
            _score_then_learn(row, part, k, policy, history, session_gap)
            row.seconds += time.perf_counter() - t0
        n += len(part)
    results = []
    for row in table:
        summary = row.board.summary(len(seen_items))
        summary["events_per_s"] = n / row.seconds if row.seconds else 0.0
        summary["events"] = n
        results.append(summary)
    return {
        "k": k,
        "events": n,
        "items": len(seen_items),
        "thresholds": list(thresholds),
        "phases": policy.names,
        "batch": batch,
        "seconds": round(time.perf_counter() - started, 2),
        "results": results,
    }


def _batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    part: list[Event] = []
    for event in events:
        part.append(event)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def _score_then_learn(
    row: _Row,
    part: list[Event],
    k: int,
    policy: SwitchingPolicy,
    history: int,
    session_gap: float,
) -> None:
    """One batch of one row: the batch's users' lists and predicted ratings as of its start,
    each event scored against its user's, then the batch learned."""
    for event in part:
        if event.user_id not in row.users:
            row.users[event.user_id] = UserState(event.user_id, max_history=history)
    who = list(dict.fromkeys(e.user_id for e in part))
    users = [row.users[uid] for uid in who]
    lists = row.engine.recommend_batch(users, k, [u.seen for u in users])
    served = {uid: [c.item_id for c in recs] for uid, recs in zip(who, lists, strict=True)}
    count = {uid: row.users[uid].interactions for uid in who}  # interactions at event time
    predicted = [
        row.engine.predict_rating(e.user_id, e.item_id) if e.rating is not None else None
        for e in part
    ]
    for event, guess in zip(part, predicted, strict=True):
        row.board.add(
            served[event.user_id], event.item_id, policy.phase_for(count[event.user_id]).name
        )
        count[event.user_id] += 1
        if guess is not None and event.rating is not None:
            row.board.add_rating(guess, event.rating)
    apply_events(row.engine, row.users, part, idle_gap=session_gap)
