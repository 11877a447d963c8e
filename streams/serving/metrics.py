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

import bisect
import logging
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from state.stats import BatchStats
from streams.schemas import DeadLetter, Recommendation

__all__ = [
    "LATENCY_BUCKETS_MS",
    "Histogram",
    "LatencyWindow",
    "LiveMetrics",
    "RollingCounter",
    "percentile",
    "rolling_ratio",
]

log = logging.getLogger(__name__)

#: Upper bounds (ms) of the cumulative latency histogram exported to Prometheus.
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values; ``None`` when there are none.

    >>> percentile([10, 20, 30, 40], 50), percentile([10, 20, 30, 40], 99)
    (20, 40)
    """
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values) / 100.0))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def rolling_ratio(num: Sequence[float], den: Sequence[float], window: int) -> list[float | None]:
    """For each position, sum(num) / sum(den) over the ``window`` positions ending there.

    >>> rolling_ratio([1, 0, 2], [2, 2, 2], 2)
    [0.5, 0.25, 0.5]
    """
    out: list[float | None] = []
    n_sum = d_sum = 0.0
    for i, (n, d) in enumerate(zip(num, den, strict=True)):
        n_sum += n
        d_sum += d
        if i >= window:
            n_sum -= num[i - window]
            d_sum -= den[i - window]
        out.append(n_sum / d_sum if d_sum > 0 else None)
    return out


class RollingCounter:
    """Counts in one-second buckets over the last ``horizon`` seconds, plus a running total."""

    def __init__(self, horizon: int = 120) -> None:
        self.horizon = horizon
        self.total = 0.0
        self._buckets: dict[int, float] = {}

    def add(self, n: float, now: float) -> None:
        sec = math.floor(now)
        self._buckets[sec] = self._buckets.get(sec, 0.0) + n
        self.total += n
        if len(self._buckets) > self.horizon + 8:
            oldest = sec - self.horizon
            self._buckets = {s: c for s, c in self._buckets.items() if s > oldest}

    def series(self, now: float, n: int) -> list[float]:
        """Counts of the ``n`` one-second buckets ending with the current one, oldest first."""
        end = math.floor(now)
        return [self._buckets.get(s, 0.0) for s in range(end - n + 1, end + 1)]

    def sum(self, now: float, window: int) -> float:
        return sum(self.series(now, window))

    def rate(self, now: float, window: int) -> float:
        """Per second over the last ``window`` buckets (the current, partial one included)."""
        return self.sum(now, window) / window


class LatencyWindow:
    """Latencies in one-second buckets; each bucket is a reservoir of at most ``per_second``."""

    def __init__(self, horizon: int = 120, per_second: int = 500, seed: int = 0) -> None:
        self.horizon = horizon
        self.per_second = per_second
        self._rng = random.Random(seed)
        self._buckets: dict[int, tuple[list[int], list[float]]] = {}  # sec -> ([seen], sample)

    def add(self, value: float, now: float) -> None:
        sec = math.floor(now)
        seen, sample = self._buckets.setdefault(sec, ([0], []))
        seen[0] += 1
        if len(sample) < self.per_second:
            sample.append(value)
        else:  # reservoir sampling (algorithm R): every value kept with equal chance
            j = self._rng.randrange(seen[0])
            if j < self.per_second:
                sample[j] = value
        if len(self._buckets) > self.horizon + 8:
            oldest = sec - self.horizon
            self._buckets = {s: b for s, b in self._buckets.items() if s > oldest}

    def values(self, now: float, window: int) -> list[float]:
        """The kept latencies of the last ``window`` buckets, sorted."""
        end = math.floor(now)
        out: list[float] = []
        for s in range(end - window + 1, end + 1):
            if s in self._buckets:
                out.extend(self._buckets[s][1])
        return sorted(out)

    def percentiles(
        self, now: float, window: int, ps: Sequence[float] = (50, 95, 99)
    ) -> dict[str, float | None]:
        vals = self.values(now, window)
        return {f"p{p:g}": percentile(vals, p) for p in ps}

    def series(self, now: float, n: int, p: float) -> list[float | None]:
        """The ``p`` percentile of each of the last ``n`` seconds alone, oldest first."""
        end = math.floor(now)
        return [
            percentile(sorted(self._buckets[s][1]), p) if s in self._buckets else None
            for s in range(end - n + 1, end + 1)
        ]


class Histogram:
    """Cumulative counts under fixed upper bounds (Prometheus ``le`` semantics), sum, count."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, observations <= le)`` for each bound and ``inf``."""
        out, running = [], 0
        for le, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append((le, running))
        return out


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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

    # -- input --------------------------------------------------------------------------
    def record_batch(
        self,
        stats: BatchStats,
        recommendations: Sequence[Recommendation],
        dead: Sequence[DeadLetter],
        now: float,
    ) -> None:
        """Fold one processed and published batch in. Never raises: figures are best effort."""
        try:
            self._record(stats, recommendations, dead, now)
        except Exception:  # the agent must not stop over a dashboard figure
            log.exception("live metrics: batch not recorded")

    def _record(
        self,
        stats: BatchStats,
        recommendations: Sequence[Recommendation],
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
        for rec in recommendations:
            if rec.latency_ms is not None:
                self.latency.add(rec.latency_ms, now)
                self.latency_hist.observe(rec.latency_ms)
            self.recent.append(
                {
                    "user_id": rec.user_id,
                    "strategy": rec.strategy,
                    "interactions": rec.interactions,
                    "event_id": rec.event_id,
                    "latency_ms": rec.latency_ms,
                    "generated_at": rec.generated_at,
                    "items": [{"item_id": i.item_id, "sources": i.sources} for i in rec.items[:5]],
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
            "dlq": {"count": totals.dead, "recent": list(self.errors)[::-1]},
            "recent": list(self.recent)[::-1],
            "series": series,
            "users_history": users,
        }
