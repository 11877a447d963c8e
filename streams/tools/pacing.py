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
import time
from collections.abc import Callable, Mapping
from typing import Any

from streams.tools.backlog import Backlog

__all__ = ["EVALUATE_MAX_LAG", "Backpressure", "Pacer", "RateLimiter", "WorkerPace"]

#: How far ``recstream evaluate --through-kafka`` publishes ahead of the workers, at most:
#: the order in which a live stream reaches workers that keep up (nearly the order it
#: happened). Unpaced, the backlog is read partition by partition in fetches, an order that
#: changes from run to run: one worker's HR@10 on the same 3,000 demo events moved by up to
#: 24 hits between runs, against 7 at this bound, at the same speed.
EVALUATE_MAX_LAG = 20

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
