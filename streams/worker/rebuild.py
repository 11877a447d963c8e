"""Reading the log back, to rebuild lost Redis state (Kafka is the source of truth).

A partition's applied offset lives in Redis beside the user states it describes. When a batch
arrives on a partition that has no applied offset although the log holds records before the
batch (Redis restarted empty or was flushed, or a worker starts on a Redis that never saw this
log), the state those records built is gone: the processor raises
:class:`~streams.worker.records.StateLost`. The agent then re-reads the partition from the
start of the log up to the batch with :class:`LogReader` and applies it again through the
normal path: user states, dedup markers and offsets are rebuilt exactly, and the models learn
only what they do not hold already (after a restart without a checkpoint, everything).
Records older than the log's start (deleted by retention) cannot be recovered; the rebuild
counts and reports them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.settings import Settings
from streams.worker.records import Record

__all__ = ["LogReader"]

log = logging.getLogger(__name__)


class LogReader:
    """Reads ranges of a partition with a consumer of its own (no group, no commits)."""

    def __init__(self, settings: Settings, idle_timeout: float = 30.0) -> None:
        self.settings = settings
        self.idle_timeout = idle_timeout

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=100,
        )

    async def start_offset(self, topic: str, partition: int) -> int:
        """The oldest offset the log still holds for the partition."""
        consumer = self._consumer()
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            return int((await consumer.beginning_offsets([tp]))[tp])
        finally:
            await consumer.stop()

    async def read(
        self, topic: str, partition: int, start: int, stop: int, chunk: int = 500
    ) -> AsyncIterator[list[Record]]:
        """The records at offsets ``start`` to ``stop - 1``, in chunks of at most ``chunk``."""
        consumer = self._consumer()
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            done, idle_since = start, time.monotonic()
            while done < stop:
                if time.monotonic() - idle_since > self.idle_timeout:
                    raise TimeoutError(f"{topic}:{partition}: no record after offset {done - 1}")
                got = await consumer.getmany(tp, timeout_ms=1000, max_records=chunk)
                batch = [
                    Record(m.value, m.partition, m.offset, m.timestamp / 1000.0, m.key)
                    for m in got.get(tp, [])
                    if m.offset < stop
                ]
                if batch:
                    done, idle_since = batch[-1].offset + 1, time.monotonic()
                    yield batch
                elif await consumer.position(tp) >= stop:
                    return
        finally:
            await consumer.stop()
