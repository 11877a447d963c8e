"""Publish a data set (or the demo shop) to Kafka as a live stream, with a progress bar;
``recstream replay`` itself (:func:`run_replay`).

``replay`` reads the whole file first: rows that are not valid events are reported (how many,
the first few with their line and reason) and left out, or with ``--strict`` the first one
stops it before anything is published. It then publishes paced to the workers (``--max-lag``,
default ``auto``) and ends by saying how far behind the workers are.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from tqdm import tqdm

from streams.settings import Settings
from streams.tools.kafka_io import ensure_topics, make_producer, publish_json
from streams.tools.pacing import Pacer, RateLimiter, WorkerPace
from streams.tools.runfile import CliSettings

__all__ = [
    "RateLimiter",
    "behind_report",
    "publish_events",
    "publish_items",
    "run_replay",
    "worker_pace",
]

#: Seconds between progress-bar postfix updates while pacing to the workers.
POSTFIX_EVERY = 0.5
#: Invalid rows shown with their reason (the others are counted).
SHOWN_INVALID = 5


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
    settings: Settings,
    max_lag: int | None = None,
    alive: Callable[[], bool] | None = None,
    *,
    tell: Callable[[str], None] | None = None,
) -> WorkerPace:
    """Backpressure from the workers of ``settings`` (their applied offsets in Redis): hold
    the publisher while ``max_lag`` events are unprocessed (default: a bound that adapts to
    keep events about 0.5 s from send to applied; 0: never, only count), unless ``alive()``
    says there is no worker. When held with no progress for 5 s, ``tell`` gets a line saying
    so. ``close()`` it when done."""
    from state.store import AppliedOffsetsReader

    def stalled(seconds: float) -> None:
        if tell is not None:
            tell(
                f"waiting for the workers: none has processed an event for {seconds:.0f} s. "
                f"Is a worker running with RECSTREAM_APP_ID={settings.app_id} against "
                f"{settings.redis_url}? (`recstream up`, or `recstream worker`; --max-lag 0 "
                "publishes without waiting)"
            )

    reader = AppliedOffsetsReader(settings.redis_url, settings.app_id)
    return WorkerPace(
        reader, settings.topic("interactions"), max_lag=max_lag, alive=alive, on_stall=stalled
    )


def behind_report(pace: WorkerPace, settings: Settings, settle: float = 2.0) -> str:
    """One line: how far behind the workers are now, from their offsets in Redis. With no
    rate of theirs measured yet (a short replay), it watches them up to ``settle`` seconds."""
    lag = pace.behind()
    deadline = time.monotonic() + settle
    while lag and pace.backlog.throughput() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        lag = pace.behind()
    if lag is None:
        return (
            "how far behind the workers are is unknown: their offsets could not be read from "
            f"{settings.redis_url}"
        )
    if lag == 0:
        return "the workers have processed every event published"
    rate = pace.backlog.throughput()
    if not rate:
        return (
            f"the workers are {lag:,} events behind and processed none in the last "
            f"{settle:g} s: is a worker running with RECSTREAM_APP_ID={settings.app_id} "
            f"against {settings.redis_url}?"
        )
    return (
        f"the workers are {lag:,} events behind: about {_duration(lag / rate)} at their "
        f"{rate:,.0f} events/s (the dashboard shows them catch up)"
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def report_invalid(skipped: list[str], rows: int, out: Any = sys.stderr) -> None:
    """How many rows were left out, and the first few with their reason."""
    print(
        f"{len(skipped):,} of {rows:,} rows are not valid events and are not published "
        "(the worker would dead-letter them):",
        file=out,
    )
    for line in skipped[:SHOWN_INVALID]:
        print(f"  {line}", file=out)
    if len(skipped) > SHOWN_INVALID:
        print(f"  ... and {len(skipped) - SHOWN_INVALID:,} more", file=out)
    print("  (--strict stops at the first invalid row instead)", file=out, flush=True)


def run_replay(cli: CliSettings, args: argparse.Namespace) -> int:
    """``recstream replay``: read, check, publish paced; the exit code."""
    from streams.tools.datasets import DataSetError, read_dataset
    from streams.tools.kafka_io import wait_for_broker
    from streams.tools.preflight import require_broker, require_redis

    settings = cli.settings
    try:
        ds = read_dataset(args.path, args.format, max_skew=settings.max_skew)
    except DataSetError as exc:
        print(f"recstream replay: {exc}", file=sys.stderr)
        return 2
    if ds.skipped and args.strict:
        print(
            f"recstream replay: {args.path}: {ds.skipped[0]} (--strict: nothing published)",
            file=sys.stderr,
        )
        return 2
    if ds.skipped:
        report_invalid(ds.skipped, ds.rows)
    require_broker(cli)
    if args.max_lag != 0:
        require_redis(
            cli,
            "; the replay is paced by the workers' progress, read there (--max-lag 0 "
            "publishes without waiting)",
        )
    wait_for_broker(settings.bootstrap_servers)
    if ds.items and not args.no_items:
        n = publish_items(settings, ds.items)
        print(f"published {n} catalogue items to {settings.topic('items')}", flush=True)
    events = ds.events[: args.limit] if args.limit else ds.events
    pace = worker_pace(settings, args.max_lag, tell=tqdm.write)
    how = "as fast as possible (--max-lag 0)"
    if args.max_lag is None:
        how = "paced to the workers (an event waits about 0.5 s for them)"
    elif args.max_lag:
        how = f"paced to the workers (at most {args.max_lag} events unprocessed)"
    cap = f", at most {args.rate:g} events/s" if args.rate else ""
    print(f"publishing {len(events):,} events {how}{cap}", flush=True)
    try:
        n = publish_events(
            settings, events, total=len(events), rate=args.rate, desc=ds.name, pace=pace
        )
        report = behind_report(pace, settings)
    finally:
        pace.close()
    print(f"published {n} events to {settings.topic('interactions')}; {report}", flush=True)
    return 0


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
