"""The worker's consumer asks the broker for a short fetch wait (streams/worker/transport.py)."""

from __future__ import annotations

import asyncio

from streams.settings import Settings
from streams.worker.app import create_app
from streams.worker.transport import FETCH_MAX_WAIT_MS, Transport


def test_the_worker_consumer_is_created_with_the_short_fetch_wait():
    async def fetch_wait_of_the_worker_consumer() -> int:
        app = create_app(Settings(app_id="transport-test", broker="kafka://127.0.0.1:1"))
        assert isinstance(app.transport, Transport)
        thread = app.consumer._thread  # Faust's consumer thread: it builds the aiokafka consumer
        consumer = thread._create_worker_consumer(app.transport)  # not started: no I/O
        consumer._closed = True  # never started, nothing to close (no "unclosed" warning)
        return consumer._fetch_max_wait_ms

    assert asyncio.run(fetch_wait_of_the_worker_consumer()) == FETCH_MAX_WAIT_MS < 1500
