"""Faust's Kafka transport (aiokafka) with a short fetch wait.

Faust hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer: how long the broker may
hold a fetch for data to arrive. Kafka answers such a fetch as soon as a record arrives, but
Tansu (the embedded broker) holds it for the whole wait, so a worker that had caught up saw
the next event only when its pending fetch expired: 0 to 1.5 s after the event arrived,
~0.75 s on average, on top of the processing. With ``RECSTREAM_FETCH_WAIT`` (the transport's
:attr:`Transport.fetch_wait_ms`, by default :data:`FETCH_MAX_WAIT_MS`) the worker sees it
within that long; on Kafka the only change is an idle consumer polling more often (a few
dozen small requests a second).

The hook is Faust's consumer-thread factory and aiokafka's ``_fetch_max_wait_ms`` (read when
the consumer starts its fetcher); ``faust-streaming`` is pinned below 0.16 in pyproject.toml,
and ``tests/unit/test_transport.py`` checks that the hook still takes.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["FETCH_MAX_WAIT_MS", "Transport"]

#: Longest a fetch waits on the broker for records, in milliseconds, unless set.
FETCH_MAX_WAIT_MS = 30


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, creating the worker's consumer with the short fetch wait."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start()
        consumer._fetch_max_wait_ms = getattr(transport, "fetch_wait_ms", FETCH_MAX_WAIT_MS)
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """``kafka://`` as Faust has it, but for the fetch wait."""

    Consumer = Consumer
    #: longest a fetch of the worker's consumer waits on the broker, in milliseconds
    fetch_wait_ms: int = FETCH_MAX_WAIT_MS
