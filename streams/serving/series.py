"""Time series primitives of the live figures: one-second buckets over a bounded horizon,
rolling ratios, latency windows and a cumulative histogram. Pure, no I/O.

>>> c = RollingCounter(horizon=60)
>>> c.add(30, now=100.2)
>>> c.rate(now=100.9, window=10)
3.0
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence

__all__ = [
    "LATENCY_BUCKETS_MS",
    "Histogram",
    "LatencyWindow",
    "RollingCounter",
    "percentile",
    "rolling_ratio",
]

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
