"""The worker's consumer asks the broker for a short fetch wait (streams/worker/transport.py)."""

from __future__ import annotations

import asyncio

import pytest

from streams.settings import Settings
from streams.worker.app import create_app
from streams.worker.transport import FETCH_MAX_WAIT_MS, Transport


@pytest.mark.parametrize("wait", [None, 0.01, 2.0])
def test_the_worker_consumer_is_created_with_the_configured_fetch_wait(wait):
    given = {} if wait is None else {"fetch_wait": wait}

    async def fetch_wait_of_the_worker_consumer() -> int:
        app = create_app(Settings(app_id="transport-test", broker="kafka://127.0.0.1:1", **given))
        assert isinstance(app.transport, Transport)
        thread = app.consumer._thread  # Faust's consumer thread: it builds the aiokafka consumer
        consumer = thread._create_worker_consumer(app.transport)  # not started: no I/O
        consumer._closed = True  # never started, nothing to close (no "unclosed" warning)
        return consumer._fetch_max_wait_ms

    want = FETCH_MAX_WAIT_MS if wait is None else round(wait * 1000)
    assert asyncio.run(fetch_wait_of_the_worker_consumer()) == want < 2500
    assert Settings().fetch_wait * 1000 == FETCH_MAX_WAIT_MS  # the default is the transport's
