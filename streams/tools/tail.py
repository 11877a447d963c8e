"""``recstream tail``: print recommendation messages as they arrive.

A deliberately small kafka-python consumer, meant to be copied: read topic ``recommendations``
(key = user_id, value = the JSON of :class:`streams.schemas.Recommendation`) without a consumer
group, so nothing is committed and any number of tails can watch side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from pydantic import ValidationError

from streams.schemas import Recommendation
from streams.settings import Settings
from streams.tools.kafka_io import consume, wait_for_broker

__all__ = ["format_recommendation", "run_tail", "tail"]


def _title(title: str | None, width: int = 30) -> str:
    if not title:
        return ""
    return f' "{title if len(title) <= width else title[: width - 1] + "…"}"'


def format_recommendation(rec: Recommendation, items: int = 5) -> str:
    """One readable line per message; each item with its title when the catalogue has one.

    >>> from streams.schemas import RecItem
    >>> rec = Recommendation(user_id="u42", strategy="active", interactions=7, event_id="e7",
    ...     items=[RecItem(item_id="sku-3", score=0.91, sources=["cf", "popularity"],
    ...     title="Trail shoe")], generated_at=0.0, latency_ms=38.5)
    >>> format_recommendation(rec)[13:]
    'u42  active (7)  38.5 ms  after e7  ->  sku-3 "Trail shoe" [cf+popularity]'
    """
    when = datetime.fromtimestamp(rec.generated_at).strftime("%H:%M:%S.%f")[:12]
    shown = "  ".join(
        f"{i.item_id}{_title(i.title)} [{'+'.join(i.sources)}]" for i in rec.items[:items]
    )
    more = f"  (+{len(rec.items) - items} more)" if len(rec.items) > items else ""
    latency = f"{rec.latency_ms:.1f} ms" if rec.latency_ms is not None else "- ms"
    after = f"after {rec.event_id}" if rec.event_id else "on demand"
    return (
        f"{when} {rec.user_id}  {rec.strategy} ({rec.interactions})  {latency}  {after}  ->  "
        f"{shown or '(empty list)'}{more}"
    )


def tail(
    settings: Settings,
    *,
    user: str | None = None,
    from_beginning: bool = False,
    raw_json: bool = False,
    count: int | None = None,
    out: TextIO = sys.stdout,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Print messages of ``recommendations`` (only ``user``'s when given); return how many."""
    shown = 0
    for record in consume(settings, "recommendations", from_beginning=from_beginning):
        if stop() or (count is not None and shown >= count):
            break
        if record is None:  # idle tick
            continue
        if user is not None and (record.key or b"").decode("utf-8", "replace") != user:
            continue
        try:
            rec = Recommendation.model_validate_json(record.value or b"")
        except ValidationError:
            print(f"(unreadable message at offset {record.offset})", file=out, flush=True)
            continue
        if raw_json:
            line = json.dumps(rec.model_dump(mode="json"), separators=(",", ":"))
        else:
            line = format_recommendation(rec)
        print(line, file=out, flush=True)
        shown += 1
        if count is not None and shown >= count:
            break
    return shown


def run_tail(settings: Settings, args: argparse.Namespace) -> int:
    """``recstream tail``: until Ctrl-C (or ``--count`` messages)."""
    wait_for_broker(settings.bootstrap_servers)
    with contextlib.suppress(KeyboardInterrupt):
        tail(
            settings,
            user=args.user,
            from_beginning=args.from_beginning,
            raw_json=args.json,
            count=args.count,
        )
    return 0
