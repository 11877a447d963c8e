"""kafka-python helpers shared by the CLI tools (replay, demo, tail) and the tests.

The worker itself speaks to Kafka through Faust (aiokafka); these are for the synchronous
sides: publishing data sets and reading topics back.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, NoBrokersAvailable, TopicAlreadyExistsError

from streams.settings import TOPICS, Settings

__all__ = [
    "consume",
    "ensure_topics",
    "make_producer",
    "publish_json",
    "wait_for_broker",
]


def list_topics(servers: list[str], timeout_ms: int = 5000) -> set[str]:
    """Topic names on the broker. (KafkaAdminClient.list_topics trips over Tansu's ACL
    bits in kafka-python 2.x, so this asks through a group-less consumer.)"""
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        request_timeout_ms=timeout_ms,
        api_version_auto_timeout_ms=min(timeout_ms, 2000),
    )
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def wait_for_broker(servers: list[str], timeout: float = 30.0) -> None:
    """Block until the broker answers a metadata request, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            list_topics(servers)
            return
        except (KafkaError, NoBrokersAvailable, OSError) as exc:
            last = exc
            time.sleep(0.3)
    raise TimeoutError(f"no Kafka broker answered at {servers} within {timeout:.0f}s: {last}")


def ensure_topics(settings: Settings, names: Iterable[str] = TOPICS) -> list[str]:
    """Create the named topics (behind the prefix) that do not exist yet; return all names."""
    wanted = [settings.topic(n) for n in names]
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        existing = list_topics(settings.bootstrap_servers)
        new = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=1)
            for name in wanted
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
    finally:
        admin.close()
    return wanted


def make_producer(settings: Settings) -> KafkaProducer:
    # No idempotence/transactions: Tansu does not support InitProducerId; the worker dedupes.
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=5,
        acks=1,
        retries=5,
        max_in_flight_requests_per_connection=1,
    )


def publish_json(producer: KafkaProducer, topic: str, key: str, value: dict[str, Any]) -> Any:
    """Send one JSON message; returns the producer's future (its record metadata once acked)."""
    return producer.send(
        topic, key=key.encode(), value=json.dumps(value, separators=(",", ":")).encode()
    )


def consume(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    timeout_ms: int = 500,
) -> Iterator[Any]:
    """Yield records of ``topic`` (no consumer group: nothing is committed)."""
    consumer = KafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=timeout_ms,
    )
    try:
        while True:
            yield from consumer
            yield None  # idle tick: lets callers check for shutdown
    finally:
        consumer.close()
