"""Redis faults against real worker processes (issue #14): a Redis that refuses writes pauses
the worker, which says so on /health and resumes losing nothing; a Redis that restarts empty
is detected and its state rebuilt from the log. Each test runs its own Redis on its own port."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from streams.settings import Settings
from streams.tools.embedded import Service, start_redis

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TS = 1_790_000_000.0  # every event at one time: popularity is then an exact count


@pytest.fixture
def own_redis() -> Iterator[Service]:
    svc = start_redis()
    yield svc
    svc.stop()


@pytest.fixture
def settings(settings: Settings, own_redis: Service) -> Settings:
    """The shared test settings on this test's own Redis, with a popularity that never decays."""
    return settings.model_copy(update={"redis_url": own_redis.url, "half_life": 1e12})


def events(start: int, n: int) -> list[dict]:
    return [
        {
            "user_id": f"u{k % 13}",
            "item_id": f"i{k % 7}",
            "event_id": f"e-{k}",
            "timestamp": TS,
        }
        for k in range(start, start + n)
    ]


def user_counts(client: redis.Redis, settings: Settings) -> dict[str, int]:
    import json

    out = {}
    for u in range(13):
        raw = client.get(f"{settings.app_id}:user:{{u{u}}}")
        out[f"u{u}"] = json.loads(raw)["interactions"] if raw else 0
    return out


def expected(evs: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
    users = Counter(e["user_id"] for e in evs)
    items = Counter(e["item_id"] for e in evs)
    return {f"u{u}": users[f"u{u}"] for u in range(13)}, dict(items)


def model_counts(worker) -> dict[str, float]:
    return {f"i{j}": worker.get(f"/items/i{j}")[1]["popularity"] for j in range(7)}


def test_a_redis_refusing_writes_pauses_the_worker_which_says_so_and_loses_nothing(
    settings, worker, publish, own_redis, wait_for
):
    client = redis.Redis.from_url(own_redis.url)
    worker.start()
    first, second = events(0, 200), events(200, 300)
    for ev in first:
        publish(ev)
    wait_for(lambda: user_counts(client, settings) == expected(first)[0], what="first 200")
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # every write now fails with OOM (READONLY is the same)
    for ev in second:
        publish(ev)

    def says_stuck() -> bool:
        status, body = worker.get("/health")
        return status == 503 and "maxmemory" in (body.get("stuck") or "")

    wait_for(says_stuck, timeout=30, what="/health to say the worker is stuck")
    time.sleep(2.0)  # stuck for a while: nothing may be passed over meanwhile
    client.config_set("maxmemory", 0)
    users, items = expected(first + second)
    wait_for(lambda: user_counts(client, settings) == users, what="every event applied")
    assert model_counts(worker) == pytest.approx(items)
    wait_for(lambda: worker.get("/health")[0] == 200, what="healthy again")
    assert worker.get("/health")[1]["stuck"] is None


def test_a_redis_restarting_empty_is_detected_and_rebuilt_from_the_log(
    settings, worker, publish, own_redis, wait_for
):
    client = redis.Redis.from_url(own_redis.url)
    worker.start()
    first, second = events(0, 250), events(250, 150)
    for ev in first:
        publish(ev)
    wait_for(lambda: user_counts(client, settings) == expected(first)[0], what="first 250")
    own_redis.stop()  # Redis restarts empty: users, markers, offsets and checkpoint gone
    again = start_redis(port=own_redis.port)
    try:
        for ev in second:
            publish(ev)
        users, items = expected(first + second)
        wait_for(lambda: user_counts(client, settings) == users, what="state rebuilt, applied")
        assert model_counts(worker) == pytest.approx(items)  # the models learned nothing twice
        assert "rebuilt" in worker.log.read_text()
        wait_for(lambda: worker.get("/health")[0] == 200, what="healthy")
    finally:
        worker.stop()
        again.stop()


def test_a_checkpoint_redis_refuses_makes_the_worker_say_so_and_loses_nothing(
    settings, worker, publish, own_redis, wait_for
):
    """Checkpoints that fail (here Redis answers WRONGTYPE for the checkpoint index) leave
    Kafka's offsets behind the last one written, so the gap a restart replays keeps growing:
    /health answers 503 with the reason while the stream goes on, and ok once one lands."""
    client = redis.Redis.from_url(own_redis.url)
    index = f"{settings.app_id}:checkpoints"
    worker.start()
    stream = iter(events(0, 1000))
    sent: list[dict] = []

    def trickle() -> None:  # an event per poll: batches (and so checkpoints) keep coming
        sent.append(next(stream))
        publish(sent[-1])

    def health() -> tuple[int, dict]:
        trickle()
        return worker.get("/health")

    wait_for(lambda: health()[1]["checkpoint"]["written_at"], what="a checkpoint written")
    client.delete(index)
    client.set(index, "not a hash")  # every checkpoint's write now fails

    def says_failing() -> bool:
        status, body = health()
        return status == 503 and "WRONGTYPE" in (body["checkpoint"]["error"] or "")

    wait_for(says_failing, timeout=30, what="/health to say checkpoints fail")
    client.delete(index)  # and no more events: an idle worker tries again by itself
    wait_for(lambda: worker.get("/health")[0] == 200, what="a checkpoint written again")
    assert worker.get("/health")[1]["checkpoint"]["error"] is None
    users, items = expected(sent)
    wait_for(lambda: user_counts(client, settings) == users, what="every event applied")
    assert model_counts(worker) == pytest.approx(items)
