"""``recstream up --demo``: publish the demo shop paced to the workers and print a few users'
lists as they change.

One of the followed users arrives only after the demo started: their first line is the
cold-start list (asked over HTTP before they act), then warm, active and established as their
events add up. A line is printed whenever a followed user's top items or phase change.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from tqdm import tqdm

from streams.settings import Settings
from streams.tools.demo import DemoShop
from streams.tools.kafka_io import consume
from streams.tools.pacing import WorkerPace
from streams.tools.processes import http_json
from streams.tools.replay import publish_events, publish_items, worker_pace

__all__ = ["format_line", "run_demo"]


def format_line(msg: dict[str, Any], items: int = 4) -> str:
    """A followed user's list in one line.

    >>> format_line({"user_id": "u1", "strategy": "cold", "interactions": 0, "latency_ms": None,
    ...     "items": [{"item_id": "i1", "sources": ["popularity"]}]})
    '  u1 [cold, 0 events, - ms] -> i1(popularity)'
    """
    latency = msg.get("latency_ms")
    shown = ", ".join(f"{i['item_id']}({'+'.join(i['sources'])})" for i in msg["items"][:items])
    ms = f"{latency:.0f} ms" if latency is not None else "- ms"
    return (
        f"  {msg['user_id']} [{msg['strategy']}, {msg['interactions']} events, {ms}] -> "
        f"{shown or '(empty list)'}"
    )


def _follow(settings: Settings, users: set[str], stop: threading.Event) -> None:
    """Print followed users' lists whenever their top items or their phase change."""
    last: dict[str, tuple[str, list[str]]] = {}
    for rec in consume(settings, "recommendations"):
        if stop.is_set():
            return
        if rec is None:
            continue
        msg = json.loads(rec.value)
        uid = msg["user_id"]
        seen = (msg["strategy"], [i["item_id"] for i in msg["items"][:5]])
        if uid not in users or last.get(uid) == seen:
            continue
        last[uid] = seen
        tqdm.write(format_line(msg))


def _announcing(
    events: Iterator[dict[str, Any]], newcomer: str, base: str, pace: WorkerPace | None
) -> Iterator[dict[str, Any]]:
    """``events``, and just before ``newcomer``'s first one, a line with the list they get
    now: the cold-start list (asked once the workers have caught up, up to 3 s)."""
    for event in events:
        if event["user_id"] == newcomer:
            deadline = time.monotonic() + 3.0
            while pace is not None and pace.behind() and time.monotonic() < deadline:
                time.sleep(0.1)
            try:
                status, cold = http_json(f"{base}/recommendations/{newcomer}", timeout=10.0)
                if status == 200:
                    tqdm.write(format_line(cold))
            except (OSError, ValueError):
                pass  # a line less, nothing else
            newcomer = ""
        yield event


def run_demo(
    settings: Settings,
    bases: list[str],
    alive: Callable[[], bool],
    events: int,
    rate: float | None,
    max_lag: int | None,
) -> int:
    """Publish the demo shop's catalogue and ``events`` events; return how many were sent."""
    shop = DemoShop.for_events(events)
    publish_items(settings, shop.items)
    print(f"published {len(shop.items)} catalogue items to {settings.topic('items')}")
    follow = shop.followed(events, settings.thresholds)
    newcomer = follow[0]
    print(f"following {', '.join(follow)} ({newcomer} arrives after the start)", flush=True)
    stop = threading.Event()
    threading.Thread(target=_follow, args=(settings, set(follow), stop), daemon=True).start()
    time.sleep(0.5)  # the follower reads from the end of the topic: let it get there
    pace = None
    if max_lag != 0:  # paced to the workers: lists stay fresh instead of queueing
        pace = worker_pace(settings, max_lag, alive=alive, tell=tqdm.write)
        cap = f"at most {rate:g} events/s, " if rate else ""
        print(
            f"pacing the demo to the workers: {cap}no more than they keep up with "
            "(lag = published, not yet processed / the bound; wait = send to processed)",
            flush=True,
        )
    try:
        stream = _announcing(shop.events(events), newcomer, bases[0], pace)
        sent = publish_events(
            settings,
            itertools.takewhile(lambda _: alive(), stream),
            total=events,
            rate=rate,
            desc="demo events",
            pace=pace,
        )
    finally:
        if pace is not None:
            pace.close()
    time.sleep(2.0)
    stop.set()
    print(f"\ndemo done: {sent} events published. Try: curl {bases[0]}/users/{newcomer}")
    print("still serving; Ctrl-C stops everything.", flush=True)
    return sent
