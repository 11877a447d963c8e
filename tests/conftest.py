"""Shared fixtures: a real Tansu broker, a real Redis, and recstream workers as processes.

Redis is the machine's (127.0.0.1:6379, or RECSTREAM_TEST_REDIS_URL) when it answers, else an
embedded one; every test gets its own app id, so its own key prefix, consumer group and topic
prefix, and its keys are deleted afterwards.

Helpers are fixtures too (``worker_env``, ``wait_for``, ``read_topic``): test modules import
neither this file nor each other. Tests that use the broker or Redis carry the ``integration``
marker, those that kill workers ``fault``, those that drive Chromium ``browser`` (see
``pyproject.toml``); ``pytest -m "not integration and not fault and not browser"`` is the pure
tier.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis

from streams.settings import Settings
from streams.tools.embedded import Service, free_port, start_redis, start_tansu
from streams.tools.kafka_io import make_producer, wait_for_broker
from streams.tools.processes import http_json as http

#: fixtures that reach a real service: a test using one is in the ``integration`` tier
REAL_SERVICES = frozenset({"broker", "redis_url"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` whatever uses the broker or Redis and is not marked yet, so that
    ``-m "not integration and not fault and not browser"`` never waits for a service."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & REAL_SERVICES and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> Iterator[Service]:
    svc = start_tansu()
    wait_for_broker([f"127.0.0.1:{svc.port}"])
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("RECSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        yield url
        return
    except (redis.RedisError, OSError):
        pass
    svc = start_redis()
    yield svc.url
    svc.stop()


@pytest.fixture
def app_id(redis_url: str) -> Iterator[str]:
    name = f"rstest-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def settings(broker: Service, redis_url: str, app_id: str) -> Settings:
    return Settings(
        broker=broker.url,
        redis_url=redis_url,
        app_id=app_id,
        topic_prefix=f"{app_id}.",
        web_port=free_port(),
        partitions=2,
        checkpoint_interval=1.0,
        rebalance_timeout=3.0,
    )


def _env(settings: Settings) -> dict[str, str]:
    return settings.to_env(dict(os.environ))


@pytest.fixture
def worker_env(settings: Settings) -> dict[str, str]:
    """This process's environment with the test's ``RECSTREAM_*`` settings: for subprocesses."""
    return _env(settings)


class Worker:
    """``recstream worker`` as a real process, configured only through RECSTREAM_* variables."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def start(self, timeout: float = 60.0) -> Worker:
        self.runs += 1
        self.log = self.log_dir / f"worker-{self.runs}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.cli", "worker"],
            env=_env(self.settings),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{self.log.read_text()[-3000:]}")
            try:
                status, body = http(f"{self.base}/health", timeout=1.0)
                if status == 200 and body["assigned_partitions"]:
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not healthy:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def get(self, path: str) -> tuple[int, Any]:
        return http(f"{self.base}{path}")


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path)
    yield w
    w.stop()


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Callable[[int], list[Worker]]]:
    """workers(n): n more ``recstream worker`` processes in the test's group (same app id and
    topics, each its own web port), not started; all stopped after the test."""
    made: list[Worker] = []

    def make(n: int) -> list[Worker]:
        for _ in range(n):
            log_dir = tmp_path / f"worker{len(made)}"
            log_dir.mkdir()
            made.append(Worker(settings.model_copy(update={"web_port": free_port()}), log_dir))
        return made[-n:]

    yield make
    for w in made:
        w.stop()


@pytest.fixture
def publish(settings: Settings) -> Iterator[Callable[..., None]]:
    """publish(value, key=None, topic="interactions"): dicts become JSON; bytes go as they are."""
    producer = make_producer(settings)

    def send(value: Any, key: str | bytes | None = None, topic: str = "interactions") -> None:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        if key is None and isinstance(value, dict):
            key = str(value.get("user_id", ""))
        k = key.encode() if isinstance(key, str) else key
        producer.send(settings.topic(topic), key=k, value=raw)

    yield send
    producer.flush()
    producer.close()


class ReadTopic(Protocol):
    def __call__(
        self, topic: str, until: Callable[[list[Any]], bool], timeout: float = ...
    ) -> list[Any]: ...


@pytest.fixture
def read_topic(settings: Settings) -> ReadTopic:
    """read_topic(topic, until, timeout=60): all records of the test's ``topic`` from the start,
    read until ``until(records)`` holds (an AssertionError after ``timeout`` seconds)."""
    from kafka import KafkaConsumer

    def read(topic: str, until: Callable[[list[Any]], bool], timeout: float = 60.0) -> list[Any]:
        consumer = KafkaConsumer(
            settings.topic(topic),
            bootstrap_servers=settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=500,
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                records.extend(consumer)
                if until(records):
                    return records
            raise AssertionError(f"timed out reading {topic}: {len(records)} records")
        finally:
            consumer.close()

    return read


class WaitFor(Protocol):
    def __call__(
        self, check: Callable[[], bool], timeout: float = ..., what: str = ...
    ) -> None: ...


def _wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def wait_for() -> WaitFor:
    """wait_for(check, timeout=60, what="condition"): poll ``check()`` every 0.3 s until it
    holds; an AssertionError naming ``what`` after ``timeout`` seconds."""
    return _wait_for
