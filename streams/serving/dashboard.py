"""The live dashboard's HTTP side: ``/dashboard``, ``/stats`` (JSON), ``/stats/stream``
(server-sent events) and ``/metrics`` (Prometheus).

The page (``static/dashboard.html`` + ``dashboard.js``, no build step, nothing fetched from the
internet) receives ``/stats`` once a second over ``/stats/stream`` (polling ``/stats`` only when
server-sent events fail). ``/stats`` joins this worker's
:class:`streams.serving.metrics.LiveMetrics` with the cluster-wide counters in Redis (users per
phase), the consumer's lag per partition and the trending items.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response, View

from state.stats import BatchStats
from streams.serving import prometheus
from streams.serving.context import WorkerContext

__all__ = ["collect_stats", "consumer_lag", "register_dashboard"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"dashboard.js": "application/javascript; charset=utf-8"}


def consumer_lag(consumer: Any) -> list[dict[str, Any]]:
    """Per assigned partition: the broker's highwater (the next offset to be written), the
    offset this worker committed (the next to read after a restart) and the last offset it read.

    ``lag`` = highwater - committed: what a restart would read again (offsets are committed
    after each model checkpoint, so this rises and falls with the checkpoint interval);
    ``unread`` = highwater - (read + 1): records on the broker this worker has not read yet.
    Faust keeps the offsets in ``_committed_offset``/``_read_offset``; a figure it does not
    know yet is ``None``.
    """
    rows = []
    for tp in sorted(consumer.assignment()):
        if "__assignor" in tp.topic:  # Faust's internal leader topic: never has records
            continue
        try:
            high = consumer.highwater(tp)
        except Exception:  # not fetched yet, or the consumer is restarting
            high = None
        committed = getattr(consumer, "_committed_offset", {}).get(tp)
        read = getattr(consumer, "_read_offset", {}).get(tp)
        next_read = read + 1 if read is not None else (committed or 0)
        rows.append(
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "highwater": high,
                "committed": committed,
                "read": read,
                "lag": max(0, high - (committed or 0)) if high is not None else None,
                "unread": max(0, high - next_read) if high is not None else None,
            }
        )
    return rows


async def _redis_stats(rt: WorkerContext) -> BatchStats | None:
    """The stats hash, or ``None`` when Redis does not answer within a second."""
    try:
        return await asyncio.wait_for(rt.store.get_stats(), 1.0)
    except Exception:
        return None


def _trending(rt: WorkerContext, n: int = 10) -> list[dict[str, Any]]:
    return [{"item_id": item, "score": round(score, 4)} for item, score in rt.engine.trending(n)]


async def collect_stats(app: faust.App, rt: WorkerContext) -> dict[str, Any]:
    """What ``/stats`` answers (and what ``/metrics`` renders)."""
    now = time.time()
    redis_stats = await _redis_stats(rt)
    phases = list(rt.engine.policy.names)
    users = {p: 0 for p in phases}
    if redis_stats is not None:
        users.update(redis_stats.users_moved)
    if redis_stats is not None:
        rt.metrics.sample_users(users, now)
    snap = rt.metrics.snapshot(now)
    snap.update(
        phases=phases,
        users_by_phase=users,
        cluster=redis_stats.counters() if redis_stats is not None else None,
        lag=consumer_lag(app.consumer),
        trending=_trending(rt),
        checkpoints=dict(rt.checkpoints),
        worker={
            "app_id": rt.settings.app_id,
            "topic_prefix": rt.settings.topic_prefix,
            "k": rt.settings.k,
            "uptime_s": round(now - rt.started_at, 1),
            "redis_up": redis_stats is not None,
        },
    )
    return snap


def register_dashboard(app: faust.App, rt: WorkerContext) -> None:
    """``GET /dashboard``, ``/dashboard/dashboard.js``, ``/stats``, ``/stats/stream`` (SSE),
    ``/metrics``."""

    @app.page("/dashboard")
    class DashboardView(View):
        async def get(self, request: Request) -> Response:
            return self.html((STATIC / "dashboard.html").read_text(encoding="utf-8"))

    @app.page("/dashboard/{name}")
    class AssetView(View):
        async def get(self, request: Request, name: str) -> Response:
            if name not in ASSETS:
                return self.json({"error": f"no dashboard asset {name!r}"}, status=404)
            body = (STATIC / name).read_bytes()
            # in headers: aiohttp refuses a charset inside ``content_type=``
            return self.bytes(body, headers={"Content-Type": ASSETS[name]})

    @app.page("/stats")
    class StatsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(await collect_stats(app, rt), headers={"Cache-Control": "no-store"})

    @app.page("/stats/stream")
    class StatsStreamView(View):
        """Server-sent events: the ``/stats`` snapshot pushed once a second."""

        async def get(self, request: Request) -> Any:
            from aiohttp import web

            resp = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
            )
            await resp.prepare(request)  # type: ignore[arg-type]
            try:
                while not app.should_stop:
                    snap = await collect_stats(app, rt)
                    await resp.write(f"data: {json.dumps(snap)}\n\n".encode())
                    await asyncio.sleep(1.0)
            except (ConnectionResetError, RuntimeError):
                pass  # the page went away
            return resp

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            snap = await collect_stats(app, rt)
            text = prometheus.render(
                rt.metrics,
                users=snap["users_by_phase"],
                lag=snap["lag"],
                now=snap["now"],
                checkpoints=snap["checkpoints"],
            )
            return self.bytes(text.encode(), headers={"Content-Type": prometheus.CONTENT_TYPE})
