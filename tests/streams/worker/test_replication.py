"""Model updates as the worker builds them: valid messages that teach another worker's models
what the first one learned (no broker: the message is encoded and decoded as on the topic)."""

from __future__ import annotations

import pickle

from models.base import UserState
from models.cf import ItemCooccurrence
from models.events import Event, apply_events
from models.hybrid import HybridRecommender
from models.popularity import DecayedPopularity
from streams.schemas import ModelUpdate, encode
from streams.worker.owner import ModelOwner
from streams.worker.replication import UpdateBuilder, apply_update


def _engine() -> HybridRecommender:
    return HybridRecommender({"popularity": DecayedPopularity(), "cf": ItemCooccurrence()})


def test_an_update_built_by_a_worker_teaches_another_worker_the_same_counts() -> None:
    events = [
        Event("a", "x", 1.0, "click", None, "s1"),
        Event("b", "x", 2.0, "click", None, "s2"),
        Event("a", "y", 3.0, "purchase", None, "s1"),
        Event("b", "z", 4.0, "view", None, "s2"),
        Event("a", "z", 5.0, "rating", 4.0, "s1"),
    ]
    users = {"a": UserState("a", interactions=2, recent=["w", "v"]), "b": UserState("b")}
    first = _engine()
    builder = UpdateBuilder("interactions", "w1")
    for e in events:
        builder.touch(3, users[e.user_id])
    contexts = {uid: pickle.loads(pickle.dumps(u)) for uid, u in users.items()}
    apply_events(first, users, events, idle_gap=1800.0, learn=[True] * 5, failed={})
    for offset, e in enumerate(events):
        builder.add(3, offset, users[e.user_id], e, advance=True)
    (sent,) = builder.close({3: (0, 4)})

    update = ModelUpdate.model_validate_json(encode(sent))  # as another worker reads it
    assert [c.user_id for c in update.users] == ["a", "b"]
    assert update.users[0].recent == contexts["a"].recent  # the context before the batch
    replica = ModelOwner(_engine(), store=None, interval=60.0)  # type: ignore[arg-type]
    assert apply_update(replica, update, history=500, idle_gap=1800.0) == 5
    assert apply_update(replica, update, history=500, idle_gap=1800.0) == 0  # held already
    for item in ("x", "y", "z"):
        assert replica.engine.popularity(item) == first.popularity(item)
    mine, theirs = first.sources["cf"], replica.engine.sources["cf"]
    assert [c.item_id for c in theirs.recommend(UserState("q", recent=["x"]), k=5)] == [
        c.item_id for c in mine.recommend(UserState("q", recent=["x"]), k=5)
    ]
