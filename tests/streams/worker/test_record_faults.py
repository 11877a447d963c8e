"""Bad records and replays against a real worker (issue #14): an oversized invalid record, a
tombstone, a far-future timestamp and an odd key in one stream with good events; a file
replayed twice with SIGKILL during the second replay."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from streams.schemas import DeadLetter
from streams.settings import Settings
from streams.tools.kafka_io import make_producer

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TS = 1_790_000_000.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Checkpoints every 3 s: a kill then finds the models' checkpoint behind Redis."""
    return settings.model_copy(update={"checkpoint_interval": 3.0})


def test_bad_records_of_any_kind_are_dead_lettered_and_their_batch_applied(
    settings, worker, read_topic, wait_for
):
    worker.start()
    producer = make_producer(settings)
    topic = settings.topic("interactions")
    good = [
        {"user_id": f"g{n % 5}", "item_id": f"i{n % 4}", "event_id": f"g-{n}", "timestamp": TS}
        for n in range(40)
    ]
    huge = json.dumps({"user_id": "", "item_id": "x", "pad": "y" * 900_000}).encode()
    future = {"user_id": "f", "item_id": "poison", "timestamp": "9999-01-01T00:00:00Z"}
    for n, ev in enumerate(good):
        producer.send(topic, key=ev["user_id"].encode(), value=json.dumps(ev).encode())
        if n == 10:
            producer.send(topic, key=b"g0", value=huge)
        if n == 20:
            producer.send(topic, key=b"g1", value=None)  # a tombstone
            producer.send(topic, key=b"f", value=json.dumps(future).encode())
        if n == 30:  # a key that is not the user id: processed under the user id
            odd = {"user_id": "g2", "item_id": "i0", "event_id": "odd-1", "timestamp": TS}
            producer.send(topic, key=b"someone-else", value=json.dumps(odd).encode())
    producer.flush()
    producer.close()

    dead = [
        DeadLetter.model_validate_json(r.value)
        for r in read_topic("interactions.dlq", lambda rs: len(rs) >= 3)
    ]
    by_kind = {
        ("tombstone" if d.tombstone else "big" if d.raw_truncated else "time"): d for d in dead
    }
    assert set(by_kind) == {"tombstone", "big", "time"}
    big = by_kind["big"]
    assert big.raw_length == len(huge) and len(big.raw) < len(huge)
    assert huge.startswith(big.raw_bytes()) and "user_id" in big.error
    assert "ahead of its arrival" in by_kind["time"].error

    users = Counter(ev["user_id"] for ev in good) + Counter({"g2": 1})
    items = Counter(ev["item_id"] for ev in good) + Counter({"i0": 1})

    def applied() -> bool:
        return all(worker.get(f"/users/{u}")[1]["interactions"] == n for u, n in users.items())

    wait_for(applied, what="every good event applied")
    for item, n in items.items():
        assert worker.get(f"/items/{item}")[1]["popularity"] == pytest.approx(n, rel=1e-6)
    assert worker.get("/items/poison")[1]["popularity"] == 0.0
    _, cold = worker.get("/recommendations/newcomer?k=3")
    assert "poison" not in [i["item_id"] for i in cold["items"]]
    assert worker.get("/health")[0] == 200


@pytest.mark.slow
def test_a_file_replayed_twice_with_a_kill_during_the_second_replay_is_learned_once(
    settings, worker, publish, wait_for
):
    events = [
        {"user_id": f"r{n % 30}", "item_id": f"i{n % 11}", "event_id": f"line-{n}", "timestamp": TS}
        for n in range(2000)
    ]
    worker.start()
    for ev in events:
        publish(ev)
    wait_for(lambda: worker.get("/users/r29")[1]["interactions"] == 2000 // 30, what="replay 1")
    time.sleep(3.5)  # the next batch checkpoints the first replay
    for ev in events:  # the same file again: every record a duplicate
        publish(ev)

    def duplicates() -> int:
        return worker.get("/stats")[1]["totals"].get("duplicates", 0)

    wait_for(lambda: duplicates() > 600, timeout=30, what="the second replay under way")
    worker.kill()  # SIGKILL while the second replay is being processed
    worker.start()
    time.sleep(5.0)  # the restarted worker re-reads what its checkpoint lacks
    items = Counter(ev["item_id"] for ev in events)

    def learned() -> dict[str, float]:
        return {i: worker.get(f"/items/{i}")[1]["popularity"] for i in items}

    wait_for(lambda: learned() == pytest.approx(dict(items)), timeout=30, what="exact counts")
    time.sleep(2.0)
    assert learned() == pytest.approx(dict(items))  # nothing learned twice
    users = Counter(ev["user_id"] for ev in events)
    assert all(worker.get(f"/users/{u}")[1]["interactions"] == n for u, n in users.items())


def test_an_id_like_an_implicit_one_or_reused_by_another_user_is_a_new_event(
    settings, worker, publish, wait_for
):
    worker.start()
    topic = settings.topic("interactions")
    publish({"user_id": "p", "item_id": "a", "timestamp": TS})  # no event_id: its place
    for p in range(settings.partitions):  # whichever partition it took, an id equal to it
        publish({"user_id": "p", "item_id": "b", "event_id": f"{topic}:{p}:0", "timestamp": TS})
    publish({"user_id": "q1", "item_id": "a", "event_id": "shared", "timestamp": TS})
    publish({"user_id": "q2", "item_id": "a", "event_id": "shared", "timestamp": TS})
    expected = {"p": 1 + settings.partitions, "q1": 1, "q2": 1}

    def counts() -> dict[str, int]:
        return {u: worker.get(f"/users/{u}")[1]["interactions"] for u in expected}

    wait_for(lambda: counts() == expected, what="every event applied")
    time.sleep(1.0)
    assert counts() == expected
