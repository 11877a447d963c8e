"""Live figures for the dashboard, ``/stats`` and ``/metrics``: pure aggregations, no I/O.

The interactions agent calls :meth:`LiveMetrics.record_batch` after each batch is published;
the web views call :meth:`LiveMetrics.snapshot`. Everything is kept in one-second buckets over a
bounded horizon (default 120 s), so memory stays flat however long the worker runs.

>>> m = LiveMetrics(window=10)
>>> m.records.add(30, now=100.2)
>>> m.records.rate(now=100.9, window=10)
3.0
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from state.stats import BatchStats
from streams.schemas import DeadLetter
from streams.serving.series import (
    LATENCY_BUCKETS_MS,
    Histogram,
    LatencyWindow,
    RollingCounter,
    rolling_ratio,
)

__all__ = ["LiveMetrics"]

log = logging.getLogger(__name__)


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A recommended item as the dashboard's feed shows it (its title when it has one)."""
    shown: dict[str, Any] = {"item_id": item["item_id"], "sources": item["sources"]}
    if item.get("title"):
        shown["title"] = _short(item["title"], 80)
    return shown


class LiveMetrics:
    """The worker's live figures. Counters here are this worker's, since it started.

    ``window`` seconds make the rolling rates, percentiles and hit rates; ``horizon`` seconds
    of per-second history feed the charts.
    """

    def __init__(
        self, window: int = 10, horizon: int = 120, recent: int = 20, errors: int = 10
    ) -> None:
        self.window = window
        self.horizon = horizon
        self.records = RollingCounter(horizon)  # records consumed: valid, dead, duplicate, replayed
        self.events = RollingCounter(horizon)  # valid events applied
        self.hits = RollingCounter(horizon)
        self.recommendations = RollingCounter(horizon)
        self.dead = RollingCounter(horizon)
        self.phase_events: dict[str, RollingCounter] = {}
        self.phase_hits: dict[str, RollingCounter] = {}
        self.latency = LatencyWindow(horizon)
        self.latency_hist = Histogram(LATENCY_BUCKETS_MS)
        self.totals = BatchStats()
        self.errors: deque[dict[str, Any]] = deque(maxlen=errors)
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)
        self.users_history: deque[tuple[int, dict[str, int]]] = deque(maxlen=horizon)
        self.last_batch_at: float | None = None
        #: CPU seconds the models cost the event loop since the worker started, per
        #: ``(source, stage)`` (:meth:`models.hybrid.HybridRecommender.take_cpu_seconds`)
        self.model_cpu: dict[tuple[str, str], float] = {}

    # -- input --------------------------------------------------------------------------
    def record_batch(
        self,
        stats: BatchStats,
        recommendations: Sequence[Mapping[str, Any]],
        dead: Sequence[DeadLetter],
        now: float,
        model_cpu: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        """Fold one processed and published batch in (with what its models cost the event
        loop, ``model_cpu``: CPU seconds per ``(source, stage)``). Never raises: figures are
        best effort."""
        try:
            self._record(stats, recommendations, dead, now)
            for key, seconds in (model_cpu or {}).items():
                self.model_cpu[key] = self.model_cpu.get(key, 0.0) + seconds
        except Exception:  # the agent must not stop over a dashboard figure
            log.exception("live metrics: batch not recorded")

    def _record(
        self,
        stats: BatchStats,
        recommendations: Sequence[Mapping[str, Any]],
        dead: Sequence[DeadLetter],
        now: float,
    ) -> None:
        self.totals = self.totals + stats
        self.records.add(stats.records, now)
        self.events.add(stats.events, now)
        self.hits.add(stats.hits, now)
        self.dead.add(len(dead), now)
        self.recommendations.add(len(recommendations), now)
        for phase, n in stats.events_by_phase.items():
            self.phase_events.setdefault(phase, RollingCounter(self.horizon)).add(n, now)
        for phase, n in stats.hits_by_phase.items():
            self.phase_hits.setdefault(phase, RollingCounter(self.horizon)).add(n, now)
        for rec in recommendations:  # as published (Recommendation's JSON)
            latency = rec.get("latency_ms")
            if latency is not None:
                self.latency.add(latency, now)
                self.latency_hist.observe(latency)
        shown = self.recent.maxlen or 0  # only the newest lists stay in the feed
        for rec in recommendations[max(0, len(recommendations) - shown) :]:
            self.recent.append(
                {
                    "user_id": rec["user_id"],
                    "strategy": rec["strategy"],
                    "interactions": rec["interactions"],
                    "event_id": rec.get("event_id"),
                    "latency_ms": rec.get("latency_ms"),
                    "generated_at": rec.get("generated_at"),
                    "items": [_item(i) for i in rec["items"][:5]],
                }
            )
        for d in dead:
            self.errors.append(
                {
                    "error": _short(d.error),
                    "topic": d.topic,
                    "partition": d.partition,
                    "offset": d.offset,
                    "raw": _short(d.raw, 80),
                    "failed_at": d.failed_at,
                }
            )
        self.last_batch_at = now

    def sample_users(self, users_by_phase: Mapping[str, int], now: float) -> None:
        """Keep the users-per-phase mix (read from Redis by the caller), one sample a second."""
        sec = math.floor(now)
        if self.users_history and self.users_history[-1][0] == sec:
            self.users_history[-1] = (sec, dict(users_by_phase))
        else:
            self.users_history.append((sec, dict(users_by_phase)))

    # -- output -------------------------------------------------------------------------
    def totals_dict(self) -> dict[str, int]:
        """This worker's counters since it started: ``records``, ``events``, ... and
        ``events:<phase>``/``hits:<phase>`` (what ``/stats`` shows as ``totals``)."""
        flat = self.totals.counters()
        flat.pop("relogged", None)
        return {k: v for k, v in flat.items() if not k.startswith("users:")} | {
            "records": self.totals.records
        }

    def model_cpu_table(self) -> dict[str, dict[str, float]]:
        """:attr:`model_cpu` as ``{source: {stage: seconds}}``, the costliest source first
        (what ``/stats`` shows as ``model_cpu_seconds``).

        >>> m = LiveMetrics()
        >>> m.record_batch(BatchStats(), [], [], 0.0, {("cf", "learn"): 1.0, ("seq", "rank"): 2.0})
        >>> m.model_cpu_table()
        {'seq': {'rank': 2.0}, 'cf': {'learn': 1.0}}
        """
        table: dict[str, dict[str, float]] = {}
        for (source, stage), seconds in self.model_cpu.items():
            table.setdefault(source, {})[stage] = round(seconds, 6)
        return dict(sorted(table.items(), key=lambda kv: -sum(kv[1].values())))

    def hit_rate(self, now: float, phase: str | None = None) -> float | None:
        """Share of events (in the rolling window) whose item was in the last served list."""
        hits = self.hits if phase is None else self.phase_hits.get(phase)
        events = self.events if phase is None else self.phase_events.get(phase)
        if hits is None or events is None:
            return None
        den = events.sum(now, self.window)
        return hits.sum(now, self.window) / den if den else None

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything the dashboard shows, JSON-ready. Series are per second, oldest first."""
        w, h = self.window, self.horizon
        phases = sorted(self.phase_events)
        events_s = self.events.series(now, h)
        series: dict[str, Any] = {
            "t": list(range(1 - h, 1)),
            "records_in": self.records.series(now, h),
            "recommendations_out": self.recommendations.series(now, h),
            "hit_rate": rolling_ratio(self.hits.series(now, h), events_s, w),
        }
        for p in (50, 95, 99):
            series[f"latency_p{p}"] = self.latency.series(now, h, p)
        for phase in phases:
            hits = self.phase_hits.get(phase, RollingCounter(h)).series(now, h)
            events = self.phase_events[phase].series(now, h)
            series[f"hit_rate:{phase}"] = rolling_ratio(hits, events, w)
        start = math.floor(now) - h + 1
        users = {
            "t": [s - math.floor(now) for s, _ in self.users_history if s >= start],
            "mix": [m for s, m in self.users_history if s >= start],
        }
        totals = self.totals
        return {
            "now": now,
            "window_s": w,
            "horizon_s": h,
            "last_batch_at": self.last_batch_at,
            "rates": {
                "records_in": self.records.rate(now, w),
                "events_in": self.events.rate(now, w),
                "recommendations_out": self.recommendations.rate(now, w),
                "dead": self.dead.rate(now, w),
            },
            "latency_ms": {
                **self.latency.percentiles(now, w),
                "count": len(self.latency.values(now, w)),
            },
            "hit_rate": {
                "rolling": self.hit_rate(now),
                "total": totals.hits / totals.events if totals.events else None,
                "phases": {
                    phase: {
                        "rolling": self.hit_rate(now, phase),
                        "events": totals.events_by_phase.get(phase, 0),
                        "hits": totals.hits_by_phase.get(phase, 0),
                    }
                    for phase in phases
                },
            },
            "totals": self.totals_dict(),
            "model_cpu_seconds": self.model_cpu_table(),
            "dlq": {"count": totals.dead, "recent": list(self.errors)[::-1]},
            "recent": list(self.recent)[::-1],
            "series": series,
            "users_history": users,
        }
