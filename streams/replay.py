"""Publish a data set (or the demo shop) to Kafka as a live stream, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from tqdm import tqdm

from streams.kafka_io import ensure_topics, make_producer, publish_json
from streams.settings import Settings

__all__ = ["publish_events", "publish_items"]


class RateLimiter:
    """Sleeps so that calls to :meth:`wait` happen at most ``rate`` times a second."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        self.next_at += self.interval
        delay = self.next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:  # fell behind by over a second: don't burst to catch up
            self.next_at = time.monotonic()


def publish_items(settings: Settings, items: Iterable[dict[str, Any]]) -> int:
    """Upsert catalogue items on topic ``items`` (key = item_id)."""
    producer = make_producer(settings)
    topic = settings.topic("items")
    n = 0
    for item in items:
        publish_json(producer, topic, str(item["item_id"]), item)
        n += 1
    producer.flush()
    producer.close()
    return n


def publish_events(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    *,
    total: int | None = None,
    rate: float | None = None,
    desc: str = "publishing",
    progress: bool = True,
    on_sent: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Publish interaction events on topic ``interactions`` (key = user_id), in order."""
    ensure_topics(settings)
    producer = make_producer(settings)
    topic = settings.topic("interactions")
    limiter = RateLimiter(rate)
    n = 0
    bar = tqdm(total=total, desc=desc, unit="ev", disable=not progress, dynamic_ncols=True)
    try:
        for event in events:
            limiter.wait()
            publish_json(producer, topic, str(event.get("user_id", "")), event)
            n += 1
            bar.update(1)
            if on_sent is not None:
                on_sent(event)
        producer.flush()
    finally:
        bar.close()
        producer.close()
    return n
