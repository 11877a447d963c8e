"""Pacing a publisher: an upper bound on the rate, and backpressure from the workers.

A publisher that outruns the workers only builds a queue: every event waits behind the ones
before it, so the lists served get staler the longer it runs. :class:`Backpressure` holds the
publisher back while too many published events are still unprocessed; :class:`Backlog` counts
them from the producer's acknowledgements and the offsets the workers applied (in Redis);
:class:`WorkerPace` puts the two together with a bound that adapts so that events wait
about ``target`` seconds until the workers have applied them. :class:`RateLimiter` stays the
upper bound (``--rate``); :class:`Pacer` is what a publisher calls before each send.

Nothing here does I/O itself: the applied offsets come from a callable, clock and sleep are
injectable, so the logic runs in tests with a fake clock.

>>> now = [0.0]
>>> limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
>>> for _ in range(3):
...     limiter.wait()
>>> now[0]
1.5
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Backlog", "Backpressure", "Pacer", "RateLimiter", "WorkerPace"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class RateLimiter:
    """Sleeps so that calls to :meth:`wait` happen at most ``rate`` times a second."""

    def __init__(
        self, rate: float | None, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = clock()

    def reset(self) -> None:
        """Forget the schedule (after a pause): the next call waits one interval, no burst."""
        self.next_at = self.clock()

    def wait(self) -> None:
        if not self.interval:
            return
        self.next_at += self.interval
        delay = self.next_at - self.clock()
        if delay > 0:
            self.sleep(delay)
        elif delay < -max(self.interval, 0.1):  # fell behind (a pause): don't burst to catch up
            self.next_at = self.clock()


class Backpressure:
    """Blocks the publisher while ``lag()`` (events published but not processed yet) is over
    ``limit()``. A lag of ``None`` means unknown (e.g. the state store does not answer): the
    publisher goes on, held back by its rate limit only. While it holds, ``on_hold`` is called
    before each poll with the seconds held so far."""

    def __init__(
        self,
        lag: Callable[[], int | None],
        limit: Callable[[], int],
        *,
        poll: float = 0.05,
        on_hold: Callable[[float], None] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.lag, self.limit, self.poll, self.on_hold = lag, limit, poll, on_hold
        self.clock, self.sleep = clock, sleep
        self.last_lag: int | None = None
        self.last_limit: int | None = None
        self.waited = 0.0  # seconds spent waiting, in total
        self.held = 0  # calls that had to wait

    def wait(self) -> float:
        """Return once the lag is under the limit (or unknown); the seconds it waited
        (exactly 0.0 when it did not wait)."""
        start: float | None = None
        while True:
            self.last_lag, self.last_limit = self.lag(), self.limit()
            if self.last_lag is None or self.last_lag < self.last_limit:
                break
            start = self.clock() if start is None else start
            if self.on_hold is not None:
                self.on_hold(self.clock() - start)
            self.sleep(self.poll)
        if start is None:
            return 0.0
        self.held += 1
        waited = self.clock() - start
        self.waited += waited
        return waited


class Backlog:
    """Events published but not yet applied by the workers, how long they waited, and the
    workers' throughput.

    Unprocessed = sent but not acknowledged by the broker yet, plus, per partition, the newest
    acknowledged offset minus the offset the workers applied (read through ``applied``, at
    most every ``refresh`` seconds; ``topic:partition`` keys, as the worker writes them).
    Acknowledgements arrive on the producer's I/O thread: :meth:`track` hooks a send's future.
    When an applied offset passes one of our records, the seconds from its send to then
    (what the event waited for its list, to within ``refresh``) go to :meth:`take_delays`.
    When the offsets cannot be read, the lag is unknown for ``retry_after`` seconds.
    """

    def __init__(
        self,
        applied: Callable[[], Mapping[str, int]],
        topic: str,
        *,
        refresh: float = 0.05,
        window: float = 5.0,
        retry_after: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.applied_source, self.topic, self.clock = applied, topic, clock
        self.refresh, self.window, self.retry_after = refresh, window, retry_after
        self._lock = threading.Lock()
        self._in_flight = 0
        self._newest: dict[str, int] = {}  # topic:partition -> newest acknowledged offset
        self._waiting: dict[str, deque[tuple[int, float]]] = {}  # tp -> (offset, sent at)
        self._delays: list[float] = []
        self._applied: dict[str, int] | None = None
        self._read_at = -float("inf")
        self._processed = 0  # applied-offset advances seen since we started
        self._samples: deque[tuple[float, int]] = deque()

    # -- producer side ------------------------------------------------------------------
    def sent(self) -> float:
        """Count one send; returns its time (for :meth:`acked`)."""
        with self._lock:
            self._in_flight += 1
        return self.clock()

    def acked(self, partition: int, offset: int, sent_at: float | None = None) -> None:
        tp = f"{self.topic}:{partition}"
        with self._lock:
            self._in_flight -= 1
            self._newest[tp] = max(self._newest.get(tp, -1), offset)
            if sent_at is not None:
                self._waiting.setdefault(tp, deque()).append((offset, sent_at))

    def failed(self, exc: object = None) -> None:
        """A send that failed for good will never be processed: stop counting it."""
        with self._lock:
            self._in_flight -= 1

    def track(self, future: Any) -> None:
        """Count a kafka-python send (its ``FutureRecordMetadata``) until it is processed."""
        sent_at = self.sent()
        future.add_callback(lambda md: self.acked(md.partition, md.offset, sent_at))
        future.add_errback(self.failed)

    # -- worker side ----------------------------------------------------------------------
    def _read(self) -> dict[str, int] | None:
        now = self.clock()
        if now - self._read_at < self.refresh:
            return self._applied
        self._read_at = now
        try:
            current = dict(self.applied_source())
        except Exception:  # the store is down: unknown, not zero; ask again in a while
            self._applied = None
            self._read_at = now + self.retry_after - self.refresh
            return None
        if self._applied is not None:  # a partition first seen now advanced from -1
            self._processed += sum(
                max(0, off - self._applied.get(tp, -1)) for tp, off in current.items()
            )
        self._applied = current
        self._samples.append((now, self._processed))
        while self._samples and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        with self._lock:
            for tp, queue in self._waiting.items():
                done = current.get(tp, -1)
                while queue and queue[0][0] <= done:
                    self._delays.append(now - queue.popleft()[1])
        return current

    @property
    def processed(self) -> int:
        """Events the workers applied since we started (as far as we read)."""
        return self._processed

    def read_now(self) -> int | None:
        """Like calling it, but with the offsets read afresh."""
        self._read_at = -float("inf")
        return self()

    def __call__(self) -> int | None:
        """Events published and not processed yet; ``None`` when the offsets are unknown."""
        applied = self._read()
        if applied is None:
            return None
        with self._lock:
            behind = sum(max(0, off - applied.get(tp, -1)) for tp, off in self._newest.items())
            return self._in_flight + behind

    def take_delays(self) -> list[float]:
        """Send-to-applied seconds of our events applied since the last call."""
        with self._lock:
            out, self._delays = self._delays, []
        return out

    def throughput(self) -> float | None:
        """Events/s the workers applied over the last ``window`` seconds (None: under 1 s seen)."""
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 - t0 >= 1.0 else None


class WorkerPace:
    """Backpressure from the workers for :func:`streams.tools.replay.publish_events`.

    The bound is ``max_lag`` events when given. Otherwise it adapts so that events wait about
    ``target`` seconds from their send to being applied (median over each ``adjust`` seconds):
    it shrinks by a fifth when they wait longer, and grows by a tenth when they wait under
    0.8 x ``target`` while the bound held the publisher back, within [``min_lag``,
    ``ceiling``]. A fixed count cannot do both: the worker's cost per event falls as batches
    grow (a user with several events in a batch gets one list), so the count that keeps
    latency low depends on the machine, the traffic and the number of workers.
    While ``alive()`` is false (no worker to wait for) the lag is unknown: no waiting.
    ``max_lag=0`` never waits (publish as fast as possible) but still counts the lag, so
    :meth:`behind` can say how far behind the workers are at the end. When the publisher has
    been held ``stall_after`` seconds with no event processed, ``on_stall(seconds)`` is called
    once (again only after the workers moved): there may be no worker at all.
    """

    def __init__(
        self,
        applied: Callable[[], Mapping[str, int]],
        topic: str,
        *,
        max_lag: int | None = None,
        target: float = 0.5,
        start_lag: int = 100,
        min_lag: int = 20,
        ceiling: int = 5000,
        adjust: float = 1.0,
        poll: float = 0.05,
        alive: Callable[[], bool] | None = None,
        stall_after: float = 5.0,
        on_stall: Callable[[float], None] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.max_lag, self.target, self.min_lag, self.ceiling = max_lag, target, min_lag, ceiling
        self.adjust, self.alive, self.clock = adjust, alive, clock
        self.paced = max_lag != 0
        self.bound = max_lag if max_lag is not None else start_lag
        self.stall_after, self.on_stall = stall_after, on_stall
        self._progress: tuple[int, float] | None = None  # (processed, since) while held
        self._told = False  # on_stall called for this stall
        self.delay: float | None = None  # median wait over the last adjustment period
        self._adjusted_at = clock()
        self._held = 0  # backpressure waits seen at the last adjustment
        # re-read the offsets on every poll (a hair under it, against clock rounding)
        self.backlog = Backlog(applied, topic, refresh=poll * 0.9, clock=clock)
        self.backpressure = Backpressure(
            self.lag, self.limit, poll=poll, on_hold=self._holding, clock=clock, sleep=sleep
        )

    def lag(self) -> int | None:
        """Events published and not processed yet (``None``: unknown, or no worker alive)."""
        if self.alive is not None and not self.alive():
            return None
        return self.backlog()

    def behind(self) -> int | None:
        """Events published and not processed yet, read afresh (``None``: unknown)."""
        if self.alive is not None and not self.alive():
            return None
        return self.backlog.read_now()

    def _holding(self, seconds: float) -> None:
        processed, now = self.backlog.processed, self.clock()
        if self._progress is None or self._progress[0] != processed:
            self._progress, self._told = (processed, now), False
        elif not self._told and now - self._progress[1] >= self.stall_after:
            self._told = True
            if self.on_stall is not None:
                self.on_stall(now - self._progress[1])

    def limit(self) -> int:
        """The current bound on unprocessed events (adjusted at most every ``adjust`` s)."""
        if not self.paced:
            return sys.maxsize
        now = self.clock()
        if self.max_lag is not None or now - self._adjusted_at < self.adjust:
            return self.bound
        self._adjusted_at = now
        delays = sorted(self.backlog.take_delays())
        held, self._held = self.backpressure.held - self._held, self.backpressure.held
        if not delays:
            return self.bound
        self.delay = delays[len(delays) // 2]
        if self.delay > self.target:
            self.bound = max(self.min_lag, int(self.bound * 0.8))
        elif self.delay < 0.8 * self.target and held:
            self.bound = min(self.ceiling, self.bound + max(1, self.bound // 10))
        return self.bound

    def wait(self) -> float:
        """Before each send: block while the workers are behind; the seconds waited."""
        return self.backpressure.wait()

    def track(self, future: Any) -> None:
        """After each send, with the producer's future."""
        self.backlog.track(future)

    def close(self) -> None:
        """Close the offsets source, when it can be closed."""
        close = getattr(self.backlog.applied_source, "close", None)
        if close is not None:
            close()

    def postfix(self) -> str:
        """For the progress bar: events unprocessed / the bound, their median wait from send
        to applied, the workers' throughput, e.g. ``lag 120/150, wait 0.4s, worker 300 ev/s``."""
        bp = self.backpressure
        if bp.last_lag is None:
            return "lag ? (no worker offsets)"
        parts = [f"lag {bp.last_lag}/{bp.last_limit}" if self.paced else f"lag {bp.last_lag}"]
        if self.delay is not None:
            parts.append(f"wait {self.delay:.1f}s")
        rate = self.backlog.throughput()
        if rate is not None:
            parts.append(f"worker {rate:.0f} ev/s")
        if not self.paced:
            parts.append("not paced")
        return ", ".join(parts)


class Pacer:
    """What a publisher calls before each send: first wait for the workers (with ``pace``),
    then for the rate limit. After a pause for the workers the rate schedule starts afresh,
    so the publisher never bursts above ``rate`` to make up for the pause."""

    def __init__(
        self,
        rate: float | None,
        pace: WorkerPace | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        self.pace = pace

    def wait(self) -> None:
        if self.pace is not None and self.pace.wait() > 0:
            self.limiter.reset()
        self.limiter.wait()
