"""Prequential (test-then-learn) replay of an event stream through model rows: pure, no I/O.

For each event in time order and each row (a single source or the hybrid), the user's top-k
(seen items excluded) is scored against the event's item first, and a rating event's rating is
predicted; then the row takes the event through :func:`models.events.apply_event`, exactly as
the worker does. ``recstream evaluate`` reads the data set and prints the result.

>>> from models.factory import build_row
>>> events = [Event(u, item, ts=float(t)) for t, (u, item) in enumerate(
...     [("z", "a"), ("u", "a"), ("u", "b"), ("v", "a"), ("v", "b")])]
>>> result = prequential({"popularity": build_row("popularity")}, events, k=1)
>>> result["events"], result["results"][0]["hr"]  # misses: z's a (nothing learned), u's b
(5, 0.6)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.base import UserState
from models.evaluation import Scoreboard
from models.events import Event, ItemChange, apply_event, apply_item
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
) -> dict[str, Any]:
    """Score then learn every event in every row; the JSON-able result (``--json``)."""
    policy = SwitchingPolicy.from_thresholds(thresholds)
    table = [_Row(name, engine, Scoreboard(name, k)) for name, engine in rows.items()]
    for row in table:
        for change in catalogue:
            apply_item(row.engine, change)
    seen_items = {c.item_id for c in catalogue if not c.deleted}
    n = 0
    started = time.perf_counter()
    for event in events:
        seen_items.add(event.item_id)
        for row in table:
            t0 = time.perf_counter()
            user = row.users.get(event.user_id)
            if user is None:
                user = row.users[event.user_id] = UserState(event.user_id, max_history=history)
            recs = row.engine.recommend(user, k=k, exclude=user.seen)
            row.board.add(
                [c.item_id for c in recs], event.item_id, policy.phase_for(user.interactions).name
            )
            if event.rating is not None:
                predicted = row.engine.predict_rating(event.user_id, event.item_id)
                if predicted is not None:
                    row.board.add_rating(predicted, event.rating)
            apply_event(row.engine, user, event, idle_gap=session_gap)
            row.seconds += time.perf_counter() - t0
        n += 1
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
        "seconds": round(time.perf_counter() - started, 2),
        "results": results,
    }
