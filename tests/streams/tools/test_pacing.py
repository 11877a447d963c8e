"""The publisher's pacing (streams/tools/pacing.py) on a fake clock: no broker, Redis or sleep."""

from __future__ import annotations

import pytest

from streams.tools import replay
from streams.tools.backlog import Backlog
from streams.tools.pacing import Backpressure, Pacer, RateLimiter, WorkerPace

TOPIC = "interactions"


class FakeClock:
    """``clock()`` and ``sleep()`` over simulated time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeWorker:
    """One partition, applied in batches the way the worker does: when idle it takes every
    published event not applied yet as one batch, which takes ``overhead`` + ``per_event`` x
    size seconds, then its offsets are applied at once. Read like the worker's Redis hash."""

    def __init__(self, clock: FakeClock, per_event: float, overhead: float = 0.0) -> None:
        self.clock, self.per_event, self.overhead = clock, per_event, overhead
        self.published = 0  # offsets 0 .. published - 1
        self.done = -1  # applied offset
        self.batch: tuple[int, float] | None = None  # (last offset, finishes at)
        self.events_applied = 0

    def applied(self) -> dict[str, int]:
        now = self.clock()
        if self.batch is not None and now >= self.batch[1]:
            self.events_applied += self.batch[0] - self.done
            self.done, self.batch = self.batch[0], None
        if self.batch is None and self.published - 1 > self.done:
            size = self.published - 1 - self.done
            self.batch = (self.published - 1, now + self.overhead + self.per_event * size)
        return {f"{TOPIC}:0": self.done} if self.done >= 0 else {}


def run_publisher(
    clock: FakeClock, worker: FakeWorker, n: int, *, rate: float | None, pace: WorkerPace | None
) -> list[tuple[float, int | None]]:
    """What publish_events does per event, with acks straight away: (send time, lag seen)."""
    pacer = Pacer(rate, pace, clock=clock, sleep=clock.sleep)
    sends = []
    for _ in range(n):
        pacer.wait()
        sends.append((clock(), pace.backpressure.last_lag if pace else None))
        if pace is not None:
            sent_at = pace.backlog.sent()
            pace.backlog.acked(0, worker.published, sent_at)
        worker.published += 1
    return sends


def most_in_one_second(times: list[float]) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0 + 1e-9:  # a half-open second, float error aside
            j += 1
        best = max(best, i - j + 1)
    return best


def test_backpressure_waits_while_the_lag_is_over_the_bound_and_goes_on_once_it_drops():
    clock = FakeClock()
    lag = {"n": 400}

    def fake_lag() -> int:
        if clock() >= 1.0:  # the worker catches up after a second
            lag["n"] = 20
        return lag["n"]

    bp = Backpressure(fake_lag, lambda: 100, poll=0.05, clock=clock, sleep=clock.sleep)
    waited = bp.wait()
    assert waited == pytest.approx(1.0, abs=0.051)
    assert clock.sleeps and all(s == 0.05 for s in clock.sleeps)
    assert (bp.last_lag, bp.last_limit) == (20, 100)
    clock.sleeps.clear()
    assert bp.wait() == 0.0 and not clock.sleeps  # under the bound: no wait at all


def test_backpressure_goes_on_when_the_lag_is_unknown():
    clock = FakeClock()
    bp = Backpressure(lambda: None, lambda: 10, clock=clock, sleep=clock.sleep)
    assert bp.wait() == 0.0 and not clock.sleeps


def test_backlog_counts_in_flight_and_acked_but_unapplied_events_per_partition():
    clock = FakeClock()
    applied = {f"{TOPIC}:0": 4}
    backlog = Backlog(lambda: applied, TOPIC, refresh=0.0, clock=clock)
    for offset in range(10):  # partition 0: offsets 0..9 acked, 0..4 applied
        backlog.sent()
        backlog.acked(0, offset)
    for offset in range(3):  # partition 1: 0..2 acked, none applied
        backlog.sent()
        backlog.acked(1, offset)
    backlog.sent()  # one in flight
    backlog.sent()
    backlog.failed(RuntimeError("gone"))  # one failed for good: never processed
    assert backlog() == 5 + 3 + 1
    applied[f"{TOPIC}:1"] = 2
    applied[f"{TOPIC}:0"] = 9
    assert backlog() == 1


def test_backlog_lag_is_unknown_while_the_offsets_cannot_be_read():
    clock = FakeClock()
    calls = []

    def down() -> dict[str, int]:
        calls.append(clock())
        raise ConnectionError("redis down")

    backlog = Backlog(down, TOPIC, refresh=0.05, retry_after=1.0, clock=clock)
    backlog.sent()
    for _ in range(30):  # one read attempt a second, not one per event
        assert backlog() is None
        clock.now += 0.1
    assert calls == pytest.approx([0.0, 1.0, 2.0], abs=0.11)


def test_a_slow_worker_holds_the_publisher_to_its_pace_and_the_lag_to_the_bound():
    clock = FakeClock()
    worker = FakeWorker(clock, per_event=0.01)  # 100 events/s
    pace = WorkerPace(worker.applied, TOPIC, max_lag=50, clock=clock, sleep=clock.sleep)
    sends = run_publisher(clock, worker, 2000, rate=300.0, pace=pace)
    times = [t for t, _ in sends]
    assert all(lag is not None and lag < 50 for _, lag in sends)
    assert most_in_one_second(times) <= 300  # --rate stays the upper bound
    # about as fast as the worker allows: 2000 events at 100/s, less the bound it may run
    # ahead, plus the moments it idles between a batch applied and the next poll
    assert (2000 - 50) / 100.0 <= times[-1] < (2000 - 50) / 100.0 / 0.85
    assert pace.backpressure.waited > 10.0


def test_a_fast_worker_leaves_the_publisher_at_its_rate():
    clock = FakeClock()
    worker = FakeWorker(clock, per_event=0.0002)
    pace = WorkerPace(worker.applied, TOPIC, clock=clock, sleep=clock.sleep)
    sends = run_publisher(clock, worker, 900, rate=300.0, pace=pace)
    times = [t for t, _ in sends]
    assert most_in_one_second(times) <= 300
    assert times[-1] == pytest.approx(3.0, abs=0.01)
    assert pace.backpressure.waited == 0.0 and pace.bound == 100  # never held, never moved


def test_the_automatic_bound_keeps_the_wait_near_the_target_as_throughput_allows():
    # cost per batch falls with its size (fixed overhead), as the worker's does: a small
    # bound wastes throughput, a large one makes events wait
    clock = FakeClock()
    worker = FakeWorker(clock, per_event=0.004, overhead=0.1)
    pace = WorkerPace(worker.applied, TOPIC, target=0.5, clock=clock, sleep=clock.sleep)
    delays: list[float] = []
    take = pace.backlog.take_delays
    pace.backlog.take_delays = lambda: delays.extend(got := take()) or got  # type: ignore[method-assign]
    run_publisher(clock, worker, 6000, rate=None, pace=pace)
    late = sorted(delays[len(delays) // 2 :])  # once settled
    assert 0.3 < late[len(late) // 2] < 0.6
    # at a steady wait of ~0.5 s a batch is ~0.25 s of work: (0.25 - 0.1) / 0.004 ~ 40 events,
    # i.e. ~150 events/s; the worker's best (huge batches) is 250/s
    rate = 6000 / clock.now
    assert 120 < rate < 250
    assert pace.min_lag < pace.bound < 200
    assert "lag " in pace.postfix() and "wait 0." in pace.postfix()


def test_a_fixed_bound_does_not_adapt():
    clock = FakeClock()
    worker = FakeWorker(clock, per_event=0.05)  # so slow that events wait long
    pace = WorkerPace(worker.applied, TOPIC, max_lag=30, clock=clock, sleep=clock.sleep)
    run_publisher(clock, worker, 300, rate=None, pace=pace)
    assert pace.limit() == 30


def test_no_worker_alive_means_no_waiting():
    clock = FakeClock()
    worker = FakeWorker(clock, per_event=1e9)  # never applies anything
    pace = WorkerPace(
        worker.applied, TOPIC, max_lag=10, alive=lambda: False, clock=clock, sleep=clock.sleep
    )
    run_publisher(clock, worker, 100, rate=None, pace=pace)
    assert clock.now == 0.0


def test_after_a_pause_the_rate_limit_does_not_burst_to_catch_up():
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 0.9  # paused for the workers, under the one-second catch-up cutoff
    limiter.reset()
    start = clock.now
    for _ in range(5):
        limiter.wait()
    assert clock.now - start == pytest.approx(0.5)


class FakeFuture:
    def __init__(self, partition: int, offset: int) -> None:
        self.md = type("Meta", (), {"partition": partition, "offset": offset})()

    def add_callback(self, fn):  # kafka-python calls back at once when already done
        fn(self.md)
        return self

    def add_errback(self, fn):
        return self


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.sent.append((topic, key))
        return FakeFuture(0, len(self.sent) - 1)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_publish_events_waits_for_the_worker_through_the_producer_acks(monkeypatch):
    from streams.settings import Settings

    producer = FakeProducer()
    monkeypatch.setattr(replay, "make_producer", lambda settings: producer)
    monkeypatch.setattr(replay, "ensure_topics", lambda settings: [])
    settings = Settings(app_id="t", topic_prefix="p.")
    done = {"offset": -1}

    def applied() -> dict[str, int]:  # a slow worker: one more event applied per read
        done["offset"] = min(len(producer.sent) - 1, done["offset"] + 1)
        return {"p.interactions:0": done["offset"]}

    pace = WorkerPace(applied, settings.topic("interactions"), max_lag=4, poll=0.001)
    lags: list[int | None] = []
    events = [{"user_id": f"u{n}", "item_id": "i"} for n in range(30)]
    n = replay.publish_events(
        settings,
        events,
        progress=False,
        pace=pace,
        on_sent=lambda event: lags.append(pace.backpressure.last_lag),
    )
    assert n == 30 and [t for t, _ in producer.sent] == ["p.interactions"] * 30
    assert all(lag is not None and lag < 4 for lag in lags)  # never over the bound at a send
    assert pace.backpressure.waited > 0


def test_unpaced_the_publisher_never_waits_but_still_knows_how_far_behind_the_workers_are():
    # issue #17, item 1: `--max-lag 0` floods on purpose and then says how far behind they are
    clock = FakeClock()
    worker = FakeWorker(clock, per_event=0.01)
    pace = WorkerPace(worker.applied, TOPIC, max_lag=0, clock=clock, sleep=clock.sleep)
    run_publisher(clock, worker, 500, rate=None, pace=pace)
    assert clock.now == 0.0 and pace.backpressure.waited == 0.0
    assert pace.behind() == 500
    clock.now += 2.0  # the first batch (all 500, 5 s of work) is still running
    assert pace.behind() == 500
    clock.now += 3.0
    assert pace.behind() == 0
    assert "not paced" in pace.postfix()


def test_a_publisher_held_with_no_worker_progress_says_so_once_per_stall():
    clock = FakeClock()
    applied = {f"{TOPIC}:0": -1}
    notices: list[float] = []
    pace = WorkerPace(
        lambda: applied,
        TOPIC,
        max_lag=3,
        stall_after=5.0,
        on_stall=notices.append,
        clock=clock,
        sleep=clock.sleep,
    )

    def late_worker(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 8.0:  # a worker starts after 8 s
            applied[f"{TOPIC}:0"] = 10

    pace.backpressure.sleep = late_worker
    for offset in range(5):
        pace.wait()
        pace.backlog.acked(0, offset, pace.backlog.sent())
    assert len(notices) == 1 and 5.0 <= notices[0] < 5.2
    assert pace.behind() == 0


def test_a_pause_of_the_event_source_does_not_make_the_rate_limit_burst():
    # the demo pauses before its newcomer's first event (to show their cold-start list): the
    # events after it must not go out in one burst, or the newcomer's first ones share a batch
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 0.5  # no reset: the publisher did not know
    start = clock.now
    for _ in range(5):
        limiter.wait()
    assert clock.now - start >= 0.4 - 1e-9
