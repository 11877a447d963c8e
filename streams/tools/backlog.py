"""How many published events the workers have not applied yet, from the producer's
acknowledgements and the offsets the workers applied (read from Redis by a callable): the
measure :class:`streams.tools.pacing.WorkerPace` paces a publisher by."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Backlog"]

Clock = Callable[[], float]


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
