"""The batch processor against a real Redis: dedup, replay after a crash, one pipeline."""

from __future__ import annotations

import asyncio
import json

import pytest

from models.factory import default_hybrid
from state.store import RedisState, UserConflict
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.records import Record, dedup_key

pytestmark = pytest.mark.integration


def records(*events, partition=0, start=0):
    return [
        Record(json.dumps(e).encode() if isinstance(e, dict) else e, partition, start + n, 1.0)
        for n, e in enumerate(events)
    ]


def run(coro):
    return asyncio.run(coro)


async def fresh(settings):
    store = RedisState(settings.redis_url, settings.app_id)
    owner = ModelOwner(default_hybrid(), store, settings.checkpoint_interval)
    return store, BatchProcessor(settings, store, owner, "interactions")


def test_a_redelivered_batch_after_a_crash_changes_nothing(settings):
    async def scenario():
        store, proc = await fresh(settings)
        batch = records({"user_id": "u", "item_id": "a"}, {"user_id": "u", "item_id": "b"}, b"{bad")
        out = await proc.process(batch)
        assert len(out.dead) == 1 and out.stats.events == 2
        await proc.commit(out)
        # the same records again (Kafka offsets were not committed before the crash)
        store2, proc2 = await fresh(settings)
        again = await proc2.process(batch)
        assert again.dead == [] and again.stats.events == 0 and again.stats.replayed == 2
        await proc2.commit(again)
        user = await store2.get_user("u")
        assert user["interactions"] == 2
        assert again.recommendations and again.recommendations[0]["user_id"] == "u"
        await store.close()
        await store2.close()

    run(scenario())


def test_duplicates_within_a_batch_and_across_batches_count_once(settings):
    async def scenario():
        store, proc = await fresh(settings)
        ev = {"user_id": "d", "item_id": "x", "event_id": "e1"}
        out = await proc.process(records(ev, ev, {**ev, "item_id": "y"}))
        assert out.stats.events == 1 and out.stats.duplicates == 2
        await proc.commit(out)
        out = await proc.process(records(ev, start=3))
        assert out.stats.duplicates == 1
        await proc.commit(out)
        assert (await store.get_user("d"))["interactions"] == 1
        await store.close()

    run(scenario())


def test_the_state_client_parses_redis_replies_with_hiredis(settings):
    """A batch's MGET of user states is parsed in C (a dependency: redis[hiredis]), not by
    redis-py's Python parser, a third of the read's CPU."""

    async def scenario():
        store = RedisState(settings.redis_url, settings.app_id)
        try:
            await store.client.ping()
            pool = store.client.connection_pool
            conn = await pool.get_connection()
            try:
                return type(conn._parser).__name__
            finally:
                await pool.release(conn)
        finally:
            await store.close()

    assert run(scenario()) == "_AsyncHiredisParser"


def test_a_batch_costs_two_redis_round_trips_whatever_its_size(settings, monkeypatch):
    async def scenario():
        store, proc = await fresh(settings)
        calls = []
        pipeline, script = store.client.pipeline, store.client.eval

        def reading(*args, **kwargs):
            calls.append("pipeline")
            return pipeline(*args, **kwargs)

        async def writing(*args, **kwargs):
            calls.append("script")
            return await script(*args, **kwargs)

        monkeypatch.setattr(store.client, "pipeline", reading)
        monkeypatch.setattr(store.client, "eval", writing)
        batch = records(*({"user_id": f"u{n % 50}", "item_id": f"i{n}"} for n in range(400)))
        await proc.commit(await proc.process(batch))
        assert calls == ["pipeline", "script"]  # one read pipeline, one atomic write
        await store.close()

    run(scenario())


def test_a_batch_is_a_few_redis_commands_whatever_its_size(settings, monkeypatch):
    """redis-py's cost is per command: users, dedup markers and offsets are read with three
    multi-key commands and written with one script, and the markers still carry their TTL."""

    async def scenario():
        store, proc = await fresh(settings)
        sizes: list[int] = []
        original = store.client.pipeline

        def counting(*args, **kwargs):
            pipe = original(*args, **kwargs)
            execute = pipe.execute

            async def counted(*a, **kw):
                sizes.append(len(pipe.command_stack))
                return await execute(*a, **kw)

            pipe.execute = counted
            return pipe

        monkeypatch.setattr(store.client, "pipeline", counting)
        start = 0
        for n in (10, 400):
            events = (
                {"user_id": f"u{k % 50}", "item_id": f"i{k}", "event_id": f"e{n}-{k}"}
                for k in range(n)
            )
            out = await proc.process(records(*events, start=start))
            await proc.commit(out)
            assert out.stats.events == n
            start += n
        assert len(sizes) == 2 and max(sizes) <= 3, sizes  # reads; each write is one script
        marker = store.event_key(dedup_key("u49", "e400-399", ""))  # the 400th: user 399 % 50
        assert 0 < await store.client.ttl(marker) <= settings.dedup_ttl
        again = await proc.process(
            records({"user_id": "u1", "item_id": "i1", "event_id": "e10-1"}, start=start)
        )
        assert again.stats.duplicates == 1 and again.stats.events == 0
        assert (await store.get_user("u1"))["interactions"] == 1 + 8  # 1 of 10, 8 of 400
        await store.close()

    run(scenario())


def test_stats_count_events_and_hits_per_phase_and_users_moving_between_phases(settings):
    async def scenario():
        store, proc = await fresh(settings)
        for n in range(6):  # one user: cold -> warm -> active
            out = await proc.process(records({"user_id": "p", "item_id": f"i{n}"}, start=n))
            await proc.commit(out)
        stats = await store.get_stats()
        assert stats.events == 6
        assert stats.events_by_phase == {"cold": 1, "warm": 4, "active": 1}
        assert stats.users_moved.get("cold", 0) == 0 and stats.users_moved.get("warm", 0) == 0
        assert stats.users_moved["active"] == 1
        await store.close()

    run(scenario())


def test_records_below_the_applied_offset_with_unknown_event_ids_are_new_not_replays(settings):
    """Redis outlived the log (topic recreated): offsets restart at 0 but the events are new."""

    async def scenario():
        store, proc = await fresh(settings)
        old = [{"user_id": "o", "item_id": f"a{n}", "event_id": f"old-{n}"} for n in range(5)]
        await proc.commit(await proc.process(records(*old)))
        # the log is recreated: new events at offsets 0..2 again
        new = [{"user_id": "o", "item_id": f"b{n}", "event_id": f"new-{n}"} for n in range(3)]
        _, proc2 = await fresh(settings)
        out = await proc2.process(records(*new))
        assert out.stats.events == 3 and out.stats.relogged == 3
        await proc2.commit(out)
        # and a true replay of the old records still changes nothing
        again = await proc2.process(records(*old))
        assert again.stats.events == 0 and again.stats.replayed == 5
        assert (await store.get_user("o"))["interactions"] == 8
        await store.close()

    run(scenario())


def test_the_published_list_is_stored_beside_the_users_state_and_only_with_its_batch(settings):
    """The list sent to a user is stored, as the very bytes sent, under its own key for
    ``GET /recommendations``; the state each batch reads holds only what learning and ranking
    need. A batch the fence refuses (the user changed since it was read) writes no list."""

    async def scenario():
        store, proc = await fresh(settings)
        others = [{"user_id": f"o{n}", "item_id": f"i{n % 3}"} for n in range(6)]
        out = await proc.process(records(*others, {"user_id": "s", "item_id": "i0"}))
        await proc.commit(out)
        sent = out.published["s"]
        assert json.loads(sent)["items"]  # popular items for a newcomer
        assert json.loads(sent) == out.recommendations[-1] == await store.get_list("s")
        raw = await store.client.get(store.user_key("s"))
        assert b'"items"' not in raw and b"last_published" not in raw
        # two processors read the same user; the first to commit wins, the other is refused
        _, slow = await fresh(settings)
        stale = await slow.process(records({"user_id": "s", "item_id": "b"}, partition=1))
        fast_out = await proc.process(records({"user_id": "s", "item_id": "c"}, start=7))
        await proc.commit(fast_out)
        with pytest.raises(UserConflict):
            await slow.commit(stale)
        assert await store.get_list("s") == json.loads(fast_out.published["s"])
        assert await store.get_list("nobody") is None
        await store.close()

    run(scenario())


def test_the_redis_bytes_per_user_count_the_state_and_the_last_list(settings):
    """What ``recstream bench`` reports as Redis's cost per user covers both of a user's keys."""
    import redis

    from state.store import bytes_per_user

    async def scenario():
        store, proc = await fresh(settings)
        assert bytes_per_user(redis.Redis.from_url(settings.redis_url), settings.app_id) is None
        out = await proc.process(records({"user_id": "a", "item_id": "x"}))
        await proc.commit(out)
        await store.close()
        return store.user_key("a"), store.list_key("a")

    user_key, list_key = run(scenario())
    client = redis.Redis.from_url(settings.redis_url)
    both = client.memory_usage(user_key, samples=0) + client.memory_usage(list_key, samples=0)
    assert bytes_per_user(client, settings.app_id) == both
