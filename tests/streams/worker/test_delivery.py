"""Delivery promises of the batch processor against a real Redis (issue #14): duplicates are
exactly the repeats, event time is bounded, tombstones and odd keys, and a batch whose Redis
write is refused is learned once however often it is retried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ResponseError

from models.factory import default_hybrid
from state.store import RedisState
from streams.settings import Settings
from streams.tools.embedded import Service, start_redis
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.records import Record

pytestmark = pytest.mark.integration

ARRIVAL = 1_795_000_000.0


def records(*events: dict | bytes | None, partition: int = 0, start: int = 0, key=None):
    return [
        Record(
            json.dumps(e).encode() if isinstance(e, dict) else e,
            partition,
            start + n,
            ARRIVAL,
            key
            if key is not None
            else (e.get("user_id", "").encode() if isinstance(e, dict) else None),
        )
        for n, e in enumerate(events)
    ]


def fresh(settings: Settings, offsets: dict[str, int] | None = None):
    store = RedisState(settings.redis_url, settings.app_id)
    owner = ModelOwner(default_hybrid(), store, settings.checkpoint_interval)
    owner.offsets = dict(offsets or {})
    return store, owner, BatchProcessor(settings, store, owner, "interactions")


def count(owner: ModelOwner, item: str) -> float:
    """How many times the models learned ``item`` (popularity at one event time = a count)."""
    return owner.engine.popularity(item)


def run(coro):
    return asyncio.run(coro)


def test_an_explicit_event_id_equal_to_an_implicit_one_is_a_new_event(settings):
    async def scenario():
        store, _owner, proc = fresh(settings)
        first = records({"user_id": "u", "item_id": "a", "timestamp": ARRIVAL})  # no event_id
        await proc.commit(await proc.process(first))
        clash = {"user_id": "u", "item_id": "b", "event_id": "interactions:0:0"}
        out = await proc.process(records({**clash, "timestamp": ARRIVAL}, start=1))
        assert out.stats.events == 1 and out.stats.duplicates == 0
        await store.close()

    run(scenario())


def test_one_event_id_from_two_users_is_two_events(settings):
    async def scenario():
        store, _owner, proc = fresh(settings)
        shared = {"item_id": "a", "event_id": "evt-1", "timestamp": ARRIVAL}
        out = await proc.process(records({**shared, "user_id": "u1"}, {**shared, "user_id": "u2"}))
        assert out.stats.events == 2 and out.stats.duplicates == 0
        await proc.commit(out)
        again = await proc.process(records({**shared, "user_id": "u2"}, start=2))
        assert again.stats.duplicates == 1 and again.stats.events == 0
        await store.close()

    run(scenario())


def test_a_redelivered_duplicate_is_not_learned_by_models_restored_before_it(settings):
    """The same file replayed twice, the worker killed during the second replay: the records of
    the second replay were duplicates; redelivered to models checkpointed after the first
    replay, they must not be learned (it learned 111 events twice before)."""

    async def scenario():
        events = [
            {
                "user_id": f"u{n % 7}",
                "item_id": f"i{n % 5}",
                "event_id": f"line-{n}",
                "timestamp": ARRIVAL,
            }
            for n in range(40)
        ]
        store, _owner, proc = fresh(settings)
        await proc.commit(await proc.process(records(*events)))  # first replay: offsets 0..39
        second = records(*events, start=40)  # second replay: offsets 40..79, all duplicates
        out = await proc.process(second)
        assert out.stats.duplicates == 40
        await proc.commit(out)
        # crash: models restored from a checkpoint taken after the first replay
        _, restored, proc2 = fresh(settings, offsets={"interactions:0": 39})
        again = await proc2.process(second)
        assert again.stats.events == 0
        assert [count(restored, f"i{j}") for j in range(5)] == [0.0] * 5
        await store.close()

    run(scenario())


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("9999-01-01T00:00:00Z", "ahead of its arrival"),
        (99_999_999_999, "ahead of its arrival"),
        (True, "not a boolean"),
        (500_000_000_000, "before 1990"),
    ],
)
def test_an_untrustworthy_timestamp_goes_to_the_dlq_and_moves_no_clock(settings, stamp, reason):
    async def scenario():
        store, owner, proc = fresh(settings)
        good = [{"user_id": "u", "item_id": "a", "timestamp": ARRIVAL} for _ in range(3)]
        bad = {"user_id": "v", "item_id": "poison", "timestamp": stamp}
        out = await proc.process(records(*good[:2], bad, good[2]))
        assert [d.offset for d in out.dead] == [2] and reason in out.dead[0].error
        assert out.stats.events == 3 and count(owner, "a") == pytest.approx(3.0)
        assert count(owner, "poison") == 0.0
        await store.close()

    run(scenario())


def test_a_tombstone_is_dead_lettered_and_an_odd_key_is_processed_under_the_user_id(settings):
    async def scenario():
        store, _owner, proc = fresh(settings)
        batch = [
            *records({"user_id": "u", "item_id": "a", "timestamp": ARRIVAL}, key=b"someone-else"),
            *records(None, start=1, key=b"u"),
        ]
        out = await proc.process(batch)
        assert out.stats.events == 1 and out.stats.odd_keys == 1
        assert [(d.offset, d.tombstone) for d in out.dead] == [(1, True)]
        assert "tombstone" in out.dead[0].error
        await proc.commit(out)
        assert (await store.get_user("u"))["interactions"] == 1
        assert (await store.get_stats()).odd_keys == 1
        await store.close()

    run(scenario())


@pytest.fixture
def own_redis() -> Iterator[Service]:
    svc = start_redis()
    yield svc
    svc.stop()


def test_a_batch_whose_redis_write_is_refused_is_learned_once_when_retried(settings, own_redis):
    """Redis refuses writes (maxmemory; READONLY and MISCONF are the same kind of error): the
    batch fails as a whole, is retried, and its records are learned and counted once."""
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    admin = redis.Redis.from_url(own_redis.url)

    async def scenario():
        store, owner, proc = fresh(settings)
        events = [{"user_id": f"u{n % 3}", "item_id": "a", "timestamp": ARRIVAL} for n in range(9)]
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        with pytest.raises(ResponseError):
            await proc.commit(await proc.process(records(*events)))
        with pytest.raises(ResponseError):  # still refused: retried, still learned once
            await proc.commit(await proc.process(records(*events)))
        admin.config_set("maxmemory", 0)
        out = await proc.process(records(*events))
        await proc.commit(out)
        assert out.stats.events == 9 and count(owner, "a") == pytest.approx(9.0)
        users = [await store.get_user(f"u{n}") for n in range(3)]
        assert [u["interactions"] for u in users] == [3, 3, 3]
        await store.close()

    run(scenario())


def test_a_model_failing_on_one_event_loses_no_event(settings):
    """A source raising while it learns one event: the batch is applied all the same (the
    user's state and the other sources take every event) and nothing is dead-lettered."""
    from models.base import Candidate, Recommender
    from models.hybrid import HybridRecommender
    from models.popularity import DecayedPopularity

    class Brittle(Recommender):
        name = "brittle"

        def learn_one(self, user, item_id, *, ts, weight=1.0, value=None) -> None:
            if item_id == "boom":
                raise RuntimeError("cannot learn boom")

        def recommend(self, user, k=10, exclude=()) -> list[Candidate]:
            return []

    async def scenario():
        store = RedisState(settings.redis_url, settings.app_id)
        engine = HybridRecommender({"popularity": DecayedPopularity(), "brittle": Brittle()})
        proc = BatchProcessor(settings, store, ModelOwner(engine, store, 60.0), "interactions")
        items = ["a", "boom", "b"]
        out = await proc.process(
            records(*({"user_id": "u", "item_id": i, "timestamp": ARRIVAL} for i in items))
        )
        await proc.commit(out)
        assert out.dead == [] and out.stats.events == 3
        assert (await store.get_user("u"))["interactions"] == 3
        assert [engine.popularity(i) for i in items] == pytest.approx([1.0, 1.0, 1.0])
        await store.close()

    run(scenario())
