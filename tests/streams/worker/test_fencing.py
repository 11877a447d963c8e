"""The fence (issue #15): a worker that lost its partition cannot overwrite newer state, and a
user whose events reach two partitions loses no update. Two processors on one real Redis play
the two workers."""

from __future__ import annotations

import asyncio
import json

import pytest

from models.factory import default_hybrid
from state.store import Fenced, RedisState, UserConflict
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.records import Record

pytestmark = pytest.mark.integration

TS = 1_790_000_000.0


def records(user: str, n: int, *, partition: int, start: int, tag: str) -> list[Record]:
    return [
        Record(
            json.dumps(
                {"user_id": user, "item_id": f"{tag}{k}", "event_id": f"{tag}-{k}", "timestamp": TS}
            ).encode(),
            partition,
            start + k,
            TS,
            user.encode(),
        )
        for k in range(n)
    ]


def worker(settings) -> tuple[RedisState, BatchProcessor]:
    store = RedisState(settings.redis_url, settings.app_id)
    owner = ModelOwner(default_hybrid(), store, 60.0)
    return store, BatchProcessor(settings, store, owner, "interactions")


def test_a_worker_that_lost_its_partition_cannot_overwrite_newer_state(settings):
    async def scenario():
        store, stale = worker(settings)
        _, fresh = worker(settings)
        await stale.commit(await stale.process(records("u", 3, partition=0, start=0, tag="a")))
        # the stale worker reads its next batch, then pauses past the session timeout ...
        paused = await stale.process(records("u", 2, partition=0, start=3, tag="b"))
        # ... the partition moves: the new owner applies the same records and more
        await fresh.commit(await fresh.process(records("u", 2, partition=0, start=3, tag="b")))
        await fresh.commit(await fresh.process(records("u", 4, partition=0, start=5, tag="c")))
        with pytest.raises(Fenced):
            await stale.commit(paused)  # resumed: its write is refused
        user = await store.get_user("u")
        assert user["interactions"] == 3 + 2 + 4
        await store.close()

    asyncio.run(scenario())


def test_one_users_events_on_two_partitions_all_count(settings):
    async def scenario():
        store, left = worker(settings)
        _, right = worker(settings)
        total = 0
        for round_ in range(5):
            a = await left.process(
                records("u", 3, partition=0, start=3 * round_, tag=f"l{round_}-")
            )
            b = await right.process(
                records("u", 2, partition=1, start=2 * round_, tag=f"r{round_}-")
            )
            await left.commit(a)
            try:
                await right.commit(b)
            except UserConflict:  # the user changed since it was read: the batch again
                b = await right.process(
                    records("u", 2, partition=1, start=2 * round_, tag=f"r{round_}-")
                )
                await right.commit(b)
            total += 5
            assert (await store.get_user("u"))["interactions"] == total
        await store.close()

    asyncio.run(scenario())
