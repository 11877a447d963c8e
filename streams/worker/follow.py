"""Topics every worker reads whole, outside the consumer group: ``model-updates`` (what the
other workers' models learned) and ``items`` (the catalogue)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.settings import Settings
from streams.worker.publish import Headers

__all__ = ["follow"]

log = logging.getLogger(__name__)


async def follow(
    settings: Settings,
    topic: str,
    handle: Callable[[bytes | None], None],
    positions: dict[int, int],
    *,
    stopping: Callable[[], bool],
    lock: asyncio.Lock,
    caught_up: asyncio.Event | None = None,
    skip: Callable[[bytes | None, Headers], bool] | None = None,
) -> None:
    """Read every partition of ``topic`` from ``positions`` (partition -> next offset; the
    beginning for a partition it lacks) and ``handle`` each record's value, keeping
    ``positions`` up to date, each under ``lock`` (the models'). A record ``handle`` fails on
    is logged and passed over (the topic's writers validated it; the error is this worker's).
    ``caught_up`` is set once every record the topic held when reading began is handled (at
    once when the topic does not exist yet). A record ``skip`` says is held already (from its
    key and headers) is passed over without being handled."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=100,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts and caught_up is not None:
            caught_up.set()  # nothing published yet: nothing to catch up with
        while not parts and not stopping():
            await asyncio.sleep(0.5)
            await consumer.topics()  # refresh the metadata until the topic exists
            parts = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
        consumer.assign(tps)
        for tp in tps:
            if tp.partition in positions:
                consumer.seek(tp, positions[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        ends = await consumer.end_offsets(tps)  # what the topic holds as reading begins
        while not stopping():
            if caught_up is not None and not caught_up.is_set() and await _reached(consumer, ends):
                caught_up.set()
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            for tp, messages in batches.items():
                async with lock:
                    for msg in messages:
                        try:
                            if skip is None or not skip(msg.key, msg.headers):
                                handle(msg.value)
                        except Exception:
                            log.exception("%s:%s:%s not applied", topic, tp.partition, msg.offset)
                        positions[tp.partition] = msg.offset + 1
                await asyncio.sleep(0)  # the stream and the views run between partitions
    finally:
        await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether ``consumer`` has read every partition up to its offset in ``ends``."""
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])
