"""A worker follows ``model-updates`` on a real broker (Tansu): the records its models hold
already, its own among them, are passed over before their values are decoded, and every
other record is handled, in order, with the positions kept up to date."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from models.hybrid import HybridRecommender
from streams.settings import Settings
from streams.tools.kafka_io import ensure_topics
from streams.worker.follow import follow
from streams.worker.owner import ModelOwner
from streams.worker.publish import send_keyed
from streams.worker.replication import update_headers, update_held

pytestmark = pytest.mark.integration


def test_a_worker_decodes_only_the_model_updates_its_models_do_not_hold(
    settings: Settings,
) -> None:
    (topic,) = ensure_topics(settings, ["model-updates"])
    owner = ModelOwner(HybridRecommender({}), store=None, interval=60.0)  # type: ignore[arg-type]
    owner.advance({"interactions:0": 19})  # what this worker learned (and published) itself
    # updates of 10 offsets each on partition 0 of interactions (0-9, ..., 30-39), the first
    # two held; one on partition 1 (not held); one without the header (an older worker's)
    updates = [{"topic": "interactions", "partition": 0, "last": last} for last in (9, 19, 29, 39)]
    updates.append({"topic": "interactions", "partition": 1, "last": 9})
    records = [(f"{u['topic']}:{u['partition']}".encode(), str(u).encode()) for u in updates]
    headers = [update_headers(u) for u in updates]
    records.append((b"interactions:0", b"no header, last 9"))
    headers.append([])
    handled: list[bytes | None] = []
    positions: dict[int, int] = {}

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            await asyncio.gather(*await send_keyed(producer, topic, records, headers))
        finally:
            await producer.stop()
        done = asyncio.Event()
        task = asyncio.create_task(
            follow(
                settings,
                topic,
                handled.append,
                positions,
                stopping=done.is_set,
                lock=asyncio.Lock(),
                skip=update_held(owner),
            )
        )
        for _ in range(200):  # until every record is read
            if sum(positions.values()) == len(records):
                break
            await asyncio.sleep(0.05)
        done.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(run())
    assert sum(positions.values()) == len(records)  # the skipped ones are read past too
    held = {records[0][1], records[1][1]}  # offsets 0-9 and 10-19 of partition 0
    assert sorted(handled) == sorted(v for _, v in records if v not in held)
