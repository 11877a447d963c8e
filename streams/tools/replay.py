"""Publish a data set (or the demo shop) to Kafka as a live stream, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from tqdm import tqdm

from streams.settings import Settings
from streams.tools.kafka_io import ensure_topics, make_producer, publish_json
from streams.tools.pacing import Pacer, RateLimiter, WorkerPace

__all__ = ["RateLimiter", "publish_events", "publish_items", "worker_pace"]

#: Seconds between progress-bar postfix updates while pacing to the workers.
POSTFIX_EVERY = 0.5


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


def worker_pace(
    settings: Settings, max_lag: int | None = None, alive: Callable[[], bool] | None = None
) -> WorkerPace:
    """Backpressure from the workers of ``settings`` (their applied offsets in Redis): hold
    the publisher while ``max_lag`` events are unprocessed (default: a bound that adapts to
    keep events about 0.5 s from send to applied), unless ``alive()`` says there is no
    worker. ``close()`` it when done."""
    from state.store import AppliedOffsetsReader

    reader = AppliedOffsetsReader(settings.redis_url, settings.app_id)
    return WorkerPace(reader, settings.topic("interactions"), max_lag=max_lag, alive=alive)


def publish_events(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    *,
    total: int | None = None,
    rate: float | None = None,
    desc: str = "publishing",
    progress: bool = True,
    on_sent: Callable[[dict[str, Any]], None] | None = None,
    pace: WorkerPace | None = None,
) -> int:
    """Publish interaction events on topic ``interactions`` (key = user_id), in order.

    At most ``rate`` a second (``None``: as fast as possible); with ``pace``, also no faster
    than the workers process them (the bar's postfix shows the lag and the bound).
    """
    ensure_topics(settings)
    producer = make_producer(settings)
    topic = settings.topic("interactions")
    pacer = Pacer(rate, pace)
    n = 0
    bar = tqdm(total=total, desc=desc, unit="ev", disable=not progress, dynamic_ncols=True)
    shown_at = 0.0
    try:
        for event in events:
            pacer.wait()
            future = publish_json(producer, topic, str(event.get("user_id", "")), event)
            n += 1
            if pace is not None:
                pace.track(future)
                if time.monotonic() - shown_at >= POSTFIX_EVERY:
                    shown_at = time.monotonic()
                    bar.set_postfix_str(pace.postfix(), refresh=False)
            bar.update(1)
            if on_sent is not None:
                on_sent(event)
        producer.flush()
    finally:
        bar.close()
        producer.close()
    return n
