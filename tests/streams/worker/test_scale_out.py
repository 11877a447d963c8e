"""Scale-out (issue #15): N workers in one group learn the same models as one, and lose no
update, through crashes, graceful stops, new workers, pauses and users on two partitions."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter

import pytest
import redis

from streams.settings import Settings
from streams.tools.kafka_io import make_producer

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

TS = 1_790_000_000.0  # one event time: popularity is an exact count
ITEMS = 40


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Six partitions, so that three or four workers all get some; popularity never decays."""
    return settings.model_copy(update={"partitions": 6, "half_life": 1e12})


def stream(n: int, users: int = 300, start: int = 0) -> list[dict]:
    return [
        {
            "user_id": f"u{k % users}",
            "item_id": f"i{(k * 7) % ITEMS}",
            "event_id": f"e-{k}",
            "timestamp": TS,
        }
        for k in range(start, start + n)
    ]


def user_counts(settings: Settings, users: list[str]) -> dict[str, int]:
    client = redis.Redis.from_url(settings.redis_url)
    raw = client.mget([f"{settings.app_id}:user:{{{u}}}" for u in users])
    return {u: json.loads(r)["interactions"] if r else 0 for u, r in zip(users, raw, strict=True)}


def models_hold(worker, items: Counter) -> bool:
    got = {i: worker.get(f"/items/{i}")[1]["popularity"] for i in items}
    return all(abs(got[i] - n) < 1e-6 * n for i, n in items.items())


def check_exact(settings, running, events, wait_for) -> None:
    users = Counter(e["user_id"] for e in events)
    items = Counter(e["item_id"] for e in events)
    wait_for(lambda: user_counts(settings, list(users)) == dict(users), what="exact user counts")
    for w in running:  # every worker's models: the whole stream's counts, a few seconds behind
        wait_for(lambda w=w: models_hold(w, items), timeout=30, what=f"{w.base}'s models")


def test_three_workers_learn_the_same_models_as_the_whole_stream(
    settings, workers, publish, wait_for
):
    running = [w.start() for w in workers(3)]
    events = stream(3000)
    for ev in events:
        publish(ev)
    check_exact(settings, running, events, wait_for)
    owned = [set(w.get("/health")[1]["assigned_partitions"]) for w in running]
    interactions = [{p for p in o if ".interactions:" in p} for o in owned]
    assert all(interactions) and not set.intersection(*interactions)  # each has its own share


def test_kill_stop_and_join_lose_nothing_and_keep_every_models_counts(
    settings, workers, publish, wait_for
):
    a, b, c = (w.start() for w in workers(3))
    events = stream(6000)
    done = threading.Event()

    def produce() -> None:
        for n, ev in enumerate(events):
            publish(ev)
            if n % 500 == 499:
                time.sleep(0.5)  # spread the stream over the faults below
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    time.sleep(2.0)
    a.kill()  # SIGKILL mid-stream ...
    a.start()  # ... and back
    b.stop(signal.SIGTERM)  # a graceful stop
    (d,) = workers(1)
    d.start()  # a newcomer
    wait_for(done.is_set, what="the stream published")
    check_exact(settings, [a, c, d], events, wait_for)


def test_a_paused_worker_is_fenced_and_nothing_is_lost(settings, workers, publish, wait_for):
    a, b = (w.start() for w in workers(2))
    events = stream(4000)
    for ev in events[:2000]:
        publish(ev)
    time.sleep(0.5)
    a.proc.send_signal(signal.SIGSTOP)  # paused past the session timeout: its partitions move
    for ev in events[2000:]:
        publish(ev)
    time.sleep(3 * settings.rebalance_timeout)
    a.proc.send_signal(signal.SIGCONT)
    check_exact(settings, [a, b], events, wait_for)


def test_one_users_events_on_two_partitions_of_two_workers_all_count(settings, workers, wait_for):
    a, b = (w.start() for w in workers(2))

    def interaction_partitions(w) -> list[int]:
        owned = w.get("/health")[1]["assigned_partitions"]
        return sorted(int(p.rsplit(":", 1)[1]) for p in owned if ".interactions:" in p)

    wait_for(lambda: interaction_partitions(a) and interaction_partitions(b), what="both own")
    pa, pb = interaction_partitions(a)[0], interaction_partitions(b)[0]
    producer = make_producer(settings)
    topic = settings.topic("interactions")
    for k in range(1500):  # a producer whose partitioner ignores the user id
        ev = {"user_id": "two", "item_id": f"i{k % ITEMS}", "event_id": f"t-{k}", "timestamp": TS}
        producer.send(topic, key=b"two", value=json.dumps(ev).encode(), partition=(pa, pb)[k % 2])
    producer.flush()
    producer.close()
    wait_for(lambda: user_counts(settings, ["two"]) == {"two": 1500}, what="all 1500 counted")
    time.sleep(2.0)
    assert user_counts(settings, ["two"]) == {"two": 1500}


def test_a_catalogue_delete_is_honoured_by_every_worker(settings, workers, publish, wait_for):
    running = [w.start() for w in workers(3)]
    for item in ("gone", "kept"):
        publish({"item_id": item, "title": item.title()}, key=item, topic="items")
    for k in range(60):
        publish({"user_id": f"c{k}", "item_id": "gone" if k % 3 else "kept", "timestamp": TS})
    for w in running:
        wait_for(lambda w=w: w.get("/items/gone")[1]["popularity"] == 40, what="learned")
    publish({"item_id": "gone", "op": "delete"}, key="gone", topic="items")
    for w in running:
        wait_for(lambda w=w: w.get("/items/gone")[1]["deleted"], what=f"{w.base} deletes")
        _, cold = w.get("/recommendations/newcomer?k=5&fresh=true")
        assert [i["item_id"] for i in cold["items"]] == ["kept"]
        assert cold["items"][0]["title"] == "Kept"
