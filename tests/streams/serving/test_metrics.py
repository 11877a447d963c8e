"""The dashboard's aggregations (streams/serving/metrics.py) against hand-computed answers."""

from __future__ import annotations

import math

import pytest

from state.stats import BatchStats
from streams.schemas import DeadLetter, RecItem, Recommendation
from streams.serving.metrics import LiveMetrics
from streams.serving.prometheus import render
from streams.serving.series import (
    Histogram,
    LatencyWindow,
    RollingCounter,
    percentile,
    rolling_ratio,
)


def samples_of(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample line of a Prometheus text."""
    lines = [line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#"]
    return {name: float(value) for name, value in lines}


def rec(user: str, latency: float | None, strategy: str = "warm") -> Recommendation:
    items = [RecItem(item_id="i1", score=1.0, sources=["popularity"])]
    return Recommendation(
        user_id=user, items=items, strategy=strategy, interactions=1, latency_ms=latency
    )


def feed(
    m: LiveMetrics,
    counters: dict[str, int],
    recs: list[Recommendation] = (),
    dead: int = 0,
    *,
    now: float,
) -> None:
    """One batch as the agent reports it: its counters, published lists and dead letters."""
    letters = [DeadLetter.of(b"{bad", f"bad {n}", "interactions", 0, n) for n in range(dead)]
    stats = BatchStats.from_counters({**counters, "recommendations": len(recs), "batches": 1})
    m.record_batch(stats, [r.model_dump(mode="json") for r in recs], letters, now)


class TestRollingCounter:
    def test_rate_is_the_sum_of_the_last_window_buckets_over_the_window(self):
        c = RollingCounter(horizon=60)
        c.add(5, now=100.0)  # bucket 100
        c.add(3, now=101.5)  # bucket 101
        c.add(2, now=109.9)  # bucket 109
        # window of 10 ending in bucket 110: buckets 101..110 -> 3 + 2 = 5 -> 0.5/s
        assert c.rate(now=110.0, window=10) == 0.5
        # ending in bucket 109: buckets 100..109 -> 5 + 3 + 2 = 10 -> 1.0/s
        assert c.rate(now=109.99, window=10) == 1.0
        assert c.total == 10

    def test_series_is_per_second_oldest_first_with_gaps_as_zero(self):
        c = RollingCounter()
        c.add(1, 10.2)
        c.add(1, 10.7)
        c.add(4, 12.0)
        assert c.series(now=12.5, n=4) == [0.0, 2.0, 0.0, 4.0]

    def test_old_buckets_are_dropped_beyond_the_horizon(self):
        c = RollingCounter(horizon=5)
        for s in range(100):
            c.add(1, float(s))
        assert len(c._buckets) <= 5 + 8
        assert c.series(now=99.0, n=5) == [1.0] * 5
        assert c.total == 100


class TestPercentiles:
    def test_nearest_rank_on_one_to_hundred(self):
        values = list(range(1, 101))
        assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]

    def test_small_samples(self):
        assert percentile([], 50) is None
        assert percentile([7.0], 99) == 7.0
        # n = 4: p50 -> rank ceil(2.0) = 2; p95 -> rank ceil(3.8) = 4; p1 -> rank 1
        assert [percentile([1, 2, 3, 4], p) for p in (50, 95, 1)] == [2, 4, 1]

    def test_window_merges_the_last_seconds_only(self):
        w = LatencyWindow(horizon=60)
        for v in range(1, 101):  # 1..100 ms at second 200
            w.add(float(v), now=200.5)
        w.add(1000.0, now=150.0)  # far outside a 10 s window ending at 205
        assert w.percentiles(now=205.0, window=10) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
        assert w.series(now=201.0, n=3, p=50) == [None, 50.0, None]

    def test_reservoir_keeps_at_most_per_second_values(self):
        w = LatencyWindow(per_second=10, seed=1)
        for v in range(1000):
            w.add(float(v), now=5.0)
        kept = w.values(now=5.0, window=1)
        assert len(kept) == 10 and set(kept) <= {float(v) for v in range(1000)}

    def test_histogram_is_cumulative_with_le_bounds(self):
        h = Histogram([10, 100])
        for v in (5, 10, 50, 100, 500):
            h.observe(v)
        assert h.cumulative() == [(10, 2), (100, 4), (math.inf, 5)]
        assert (h.sum, h.count) == (665, 5)


class TestHitRate:
    def test_rolling_ratio_by_hand(self):
        # window 3: [1/2, (1+1)/(2+2), (1+1+0)/(2+2+4), (1+0+3)/(2+4+4)]
        assert rolling_ratio([1, 1, 0, 3], [2, 2, 4, 4], 3) == [0.5, 0.5, 0.25, 0.4]
        assert rolling_ratio([0, 0], [0, 1], 1) == [None, 0.0]

    def test_rolling_and_per_phase_hit_rate_from_batches(self):
        m = LiveMetrics(window=10)
        # t=100: 4 warm events, 1 hit; 6 active events, 3 hits
        feed(
            m,
            {"events": 10, "hits": 4, "events:warm": 4, "hits:warm": 1}
            | {"events:active": 6, "hits:active": 3},
            now=100.0,
        )
        # t=105: 10 active events, 1 hit
        feed(m, {"events": 10, "hits": 1, "events:active": 10, "hits:active": 1}, now=105.0)
        assert m.hit_rate(now=105.0) == 5 / 20
        assert m.hit_rate(now=105.0, phase="warm") == 1 / 4
        assert m.hit_rate(now=105.0, phase="active") == 4 / 16
        # at t=112 the first batch (bucket 100) has left the 10 s window (buckets 103..112)
        assert m.hit_rate(now=112.0) == 1 / 10
        assert m.hit_rate(now=112.0, phase="warm") is None
        snap = m.snapshot(now=112.0)
        assert snap["hit_rate"]["total"] == 5 / 20
        assert snap["hit_rate"]["phases"]["active"] == {"rolling": 0.1, "events": 16, "hits": 4}


class TestLiveMetrics:
    def test_snapshot_rates_latency_dlq_and_feed(self):
        m = LiveMetrics(window=10, recent=3, errors=2)
        stats = {"events": 8, "hits": 2, "dead": 3, "duplicates": 1, "replayed": 0}
        recs = [rec(f"u{n}", latency=float(10 * (n + 1))) for n in range(4)]  # 10..40 ms
        feed(m, stats, recs, dead=3, now=50.0)
        feed(m, {"events": 2, "hits": 0}, [rec("late", None)], now=59.0)
        snap = m.snapshot(now=59.5)
        # records: 8 + 3 + 1 + 0 = 12, then 2 -> 14 in buckets 50..59 -> 1.4/s
        assert snap["rates"]["records_in"] == pytest.approx(1.4)
        assert snap["rates"]["events_in"] == pytest.approx(1.0)
        assert snap["rates"]["recommendations_out"] == pytest.approx(0.5)
        assert snap["latency_ms"] == {"p50": 20.0, "p95": 40.0, "p99": 40.0, "count": 4}
        assert snap["totals"]["records"] == 14 and snap["totals"]["recommendations"] == 5
        assert snap["dlq"]["count"] == 3
        assert [e["offset"] for e in snap["dlq"]["recent"]] == [2, 1]  # newest first, last 2
        assert [r["user_id"] for r in snap["recent"]] == ["late", "u3", "u2"]
        assert snap["recent"][1]["items"] == [{"item_id": "i1", "sources": ["popularity"]}]
        assert len(snap["series"]["t"]) == 120 and snap["series"]["t"][-1] == 0
        assert snap["series"]["records_in"][-10:] == [12.0] + [0.0] * 8 + [2.0]

    def test_users_mix_keeps_one_sample_per_second(self):
        m = LiveMetrics(horizon=5)
        m.sample_users({"cold": 1}, now=10.1)
        m.sample_users({"cold": 2}, now=10.9)
        m.sample_users({"cold": 2, "warm": 1}, now=11.0)
        hist = m.snapshot(now=11.5)["users_history"]
        assert hist == {"t": [-1, 0], "mix": [{"cold": 2}, {"cold": 2, "warm": 1}]}

    def test_a_broken_batch_report_is_logged_not_raised(self):
        m = LiveMetrics()
        m.record_batch(object(), [], [], now=1.0)  # type: ignore[arg-type]
        assert m.totals == BatchStats() and m.totals_dict() == {"records": 0}

    def test_what_the_models_cost_the_loop_adds_up_per_source_and_stage_as_a_counter(self):
        m = LiveMetrics()
        for now in (1.0, 2.0):
            m.record_batch(
                BatchStats(batches=1), [], [], now, {("cf", "learn"): 0.25, ("blend", "rank"): 0.5}
            )
        m.record_batch(BatchStats(batches=1), [], [], 3.0)  # a batch that reports none
        text = render(m, users={}, lag=[], now=3.0)
        lines = text.splitlines()
        assert "# TYPE recstream_model_cpu_seconds_total counter" in lines
        assert 'recstream_model_cpu_seconds_total{source="cf",stage="learn"} 0.5' in lines
        assert 'recstream_model_cpu_seconds_total{source="blend",stage="rank"} 1' in lines

    def test_checkpoints_are_counted_by_outcome_with_the_last_ones_duration_and_time(self):
        m = LiveMetrics()
        done = {"written": 3, "failed": 1, "seconds": 0.25, "written_at": 1700000000.5}
        samples = samples_of(render(m, users={}, lag=[], now=1.0, checkpoints=done))
        assert samples['recstream_checkpoints_total{outcome="written"}'] == 3
        assert samples['recstream_checkpoints_total{outcome="failed"}'] == 1
        assert samples["recstream_checkpoint_seconds"] == 0.25
        assert samples["recstream_last_checkpoint_timestamp_seconds"] == 1700000000.5
        none = {"written": 0, "failed": 2, "seconds": None, "written_at": None}
        samples = samples_of(render(m, users={}, lag=[], now=1.0, checkpoints=none))
        assert samples['recstream_checkpoints_total{outcome="written"}'] == 0
        assert samples['recstream_checkpoints_total{outcome="failed"}'] == 2
        assert "recstream_checkpoint_seconds" not in samples  # no duration before one is written
        assert "recstream_last_checkpoint_timestamp_seconds" not in samples

    def test_prometheus_text_parses_and_carries_the_counters(self):
        m = LiveMetrics()
        feed(
            m, {"events": 3, "hits": 1, "events:cold": 3, "hits:cold": 1}, [rec("u", 12.0)], now=5.0
        )
        lag = [{"topic": "t", "partition": 0, "lag": 4, "unread": 1}]
        samples = samples_of(render(m, users={"cold": 3, "warm": 0}, lag=lag, now=5.0))
        assert samples["recstream_events_total"] == 3
        assert samples["recstream_hits_total"] == 1
        assert samples['recstream_phase_events_total{phase="cold"}'] == 3
        assert samples['recstream_latency_seconds_bucket{le="0.01"}'] == 0
        assert samples['recstream_latency_seconds_bucket{le="0.025"}'] == 1
        assert samples['recstream_latency_seconds_bucket{le="+Inf"}'] == 1
        assert samples["recstream_latency_seconds_sum"] == pytest.approx(0.012)
        assert samples['recstream_users{phase="cold"}'] == 3
        assert samples['recstream_consumer_lag{topic="t",partition="0"}'] == 4
        assert samples['recstream_online_hit_rate{phase=""}'] == pytest.approx(1 / 3)
