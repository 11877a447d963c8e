"""The worker's lists and model updates go out in record batches (``streams.worker.publish``),
against a real broker (Tansu): every record arrives once, on the partition a keyed ``send``
puts it on, in order per key, in more than one batch when they do not fit one."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer
from kafka.partitioner.default import DefaultPartitioner as KafkaPythonPartitioner

from streams.settings import Settings
from streams.tools.kafka_io import ensure_topics
from streams.worker.publish import send_keyed

pytestmark = pytest.mark.integration


def test_records_sent_in_batches_arrive_once_on_their_keys_partition_in_order(
    settings: Settings,
) -> None:
    (topic,) = ensure_topics(settings, ["recommendations"])
    # 600 records of 1 KB over 40 keys: far more than one 16 KB record batch per partition
    records = [(f"user{n % 40}".encode(), f"{n:04d}".encode() + b"x" * 1000) for n in range(600)]

    async def send() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            futures = await send_keyed(producer, topic, records)
            await asyncio.gather(*futures)
            return len(futures)
        finally:
            await producer.stop()

    batches = asyncio.run(send())
    assert batches > settings.partitions  # split where a batch was full

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    got = list(consumer)
    consumer.close()
    assert sorted((r.key, r.value) for r in got) == sorted(records)
    partitions = sorted({r.partition for r in got})
    place = KafkaPythonPartitioner()
    all_parts = list(range(settings.partitions))
    assert all(r.partition == place(r.key, all_parts, all_parts) for r in got)
    assert len(partitions) > 1
    for key in {k for k, _ in records}:  # one key's records in the order they were sent
        mine = sorted((r for r in got if r.key == key), key=lambda r: r.offset)
        assert [r.value for r in mine] == [v for k, v in records if k == key]


def test_records_sent_with_headers_arrive_with_them(settings: Settings) -> None:
    (topic,) = ensure_topics(settings, ["model-updates"])
    records = [(f"interactions:{n % 3}".encode(), f"update {n}".encode()) for n in range(30)]
    headers = [[("recstream-last", str(n).encode())] for n in range(30)]

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            await asyncio.gather(*await send_keyed(producer, topic, records, headers))
            with pytest.raises(ValueError, match="one headers sequence per record"):
                await send_keyed(producer, topic, records, headers[:1])
        finally:
            await producer.stop()

    asyncio.run(send())
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    got = sorted((r.value, r.key, list(r.headers)) for r in consumer)
    consumer.close()
    assert got == sorted((v, k, h) for (k, v), h in zip(records, headers, strict=True))
