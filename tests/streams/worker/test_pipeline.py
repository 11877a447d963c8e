"""End to end through a real broker (Tansu) and a real Redis: events in, recommendations out."""

from __future__ import annotations

import json

import pytest

from streams.schemas import DeadLetter, Recommendation

pytestmark = pytest.mark.integration


def latest_by_user(records: list) -> dict[str, Recommendation]:
    out: dict[str, Recommendation] = {}
    for rec in records:
        msg = Recommendation.model_validate_json(rec.value)
        assert rec.key.decode() == msg.user_id
        out[msg.user_id] = msg
    return out


def test_every_user_with_valid_events_gets_recommendations_without_seen_items(
    settings, worker, publish, read_topic
):
    worker.start()
    histories = {
        "alice": ["i1", "i2", "i3"],
        "bob": ["i2", "i4"],
        "carol": ["i5", "i1", "i6", "i7", "i8", "i9"],
    }
    # background traffic so there is something popular to recommend
    for n in range(30):
        publish({"user_id": f"bg{n % 5}", "item_id": f"i{n % 12}", "type": "view"})
    for user, items in histories.items():
        for n, item in enumerate(items):
            publish({"user_id": user, "item_id": item, "event_id": f"{user}-{n}", "type": "click"})

    def done(records: list) -> bool:
        latest = latest_by_user(records)
        return all(
            u in latest and latest[u].interactions == len(items) for u, items in histories.items()
        )

    latest = latest_by_user(read_topic("recommendations", done))
    for user, items in histories.items():
        rec = latest[user]
        assert rec.items, f"{user} got an empty list"
        assert not {i.item_id for i in rec.items} & set(items), f"{user} was shown a seen item"
        assert all(i.sources for i in rec.items)
        assert rec.strategy == ("warm" if len(items) < 5 else "active")
        assert rec.event_id == f"{user}-{len(items) - 1}"
        assert rec.latency_ms is not None and rec.latency_ms >= 0


def test_malformed_events_go_to_the_dlq_with_their_exact_bytes_and_the_worker_goes_on(
    settings, worker, publish, read_topic, wait_for
):
    worker.start()
    bad = [
        b"{not json",
        json.dumps({"item_id": "i1"}).encode(),  # missing user_id
        json.dumps({"user_id": 42, "item_id": "i1"}).encode(),  # wrong type
        json.dumps({"user_id": "u", "item_id": "i1", "value": "lots"}).encode(),
        json.dumps({"user_id": "u", "item_id": "i1", "type": "teleport"}).encode(),
        b"\xff\xfe\x00binary",
        b"",
    ]
    for raw in bad:
        publish(raw, key=b"u")
    publish({"user_id": "after", "item_id": "i1", "event_id": "after-1"})

    dead = read_topic("interactions.dlq", lambda r: len(r) >= len(bad))
    letters = [DeadLetter.model_validate_json(r.value) for r in dead]
    assert sorted(d.raw_bytes() for d in letters) == sorted(bad)
    by_raw = {d.raw_bytes(): d for d in letters}
    assert "user_id" in by_raw[bad[1]].error
    assert "user_id" in by_raw[bad[2]].error
    assert "value" in by_raw[bad[3]].error
    assert "type" in by_raw[bad[4]].error
    assert by_raw[bad[5]].raw_encoding == "base64"
    for d in letters:
        assert d.topic == settings.topic("interactions") and d.offset >= 0 and d.failed_at > 0
    wait_for(lambda: worker.get("/users/after")[1]["interactions"] == 1, what="valid event")


def test_duplicate_event_ids_change_nothing(settings, worker, publish, read_topic, wait_for):
    worker.start()
    event = {"user_id": "dup", "item_id": "i1", "event_id": "same-id"}
    for _ in range(3):
        publish(event)
    publish({"user_id": "dup", "item_id": "i2", "event_id": "other-id"})

    def served_other(records: list) -> bool:
        return any(
            Recommendation.model_validate_json(x.value).event_id == "other-id" for x in records
        )

    read_topic("recommendations", served_other)
    status, user = worker.get("/users/dup")
    assert status == 200
    assert user["interactions"] == 2
    assert user["recent_items"] == ["i2", "i1"]
    # the same event again, later, in another batch: still nothing
    publish(event)
    publish({"user_id": "dup", "item_id": "i3", "event_id": "third-id"})
    wait_for(lambda: worker.get("/users/dup")[1]["interactions"] == 3, what="third event")
    assert worker.get("/users/dup")[1]["recent_items"] == ["i3", "i2", "i1"]


def test_http_endpoints_answer_as_specified(settings, worker, publish, wait_for):
    worker.start()
    for n in range(8):
        publish({"user_id": "web", "item_id": f"w{n}", "event_id": f"web-{n}"})
        publish({"user_id": f"other{n}", "item_id": "hit", "event_id": f"o-{n}"})
    wait_for(lambda: worker.get("/users/web")[1]["interactions"] == 8, what="8 events")

    status, user = worker.get("/users/web")
    assert status == 200
    assert user["user_id"] == "web" and user["phase"] == "active"
    assert user["recent_items"][0] == "w7" and len(user["recent_items"]) == 8

    status, rec = worker.get("/recommendations/web?k=3")
    assert status == 200
    assert rec["user_id"] == "web" and rec["strategy"] == "active" and rec["interactions"] == 8
    assert 1 <= len(rec["items"]) <= 3
    assert rec["items"][0]["item_id"] == "hit"
    assert not {i["item_id"] for i in rec["items"]} & set(user["recent_items"])

    status, cold = worker.get("/recommendations/never-seen-user")
    assert status == 200
    assert cold["strategy"] == "cold" and cold["interactions"] == 0
    assert cold["items"] and cold["items"][0]["item_id"] == "hit"

    status, unknown = worker.get("/users/never-seen-user")
    assert status == 200 and unknown["interactions"] == 0 and unknown["phase"] == "cold"

    assert worker.get("/recommendations/web?k=zero")[0] == 400

    status, health = worker.get("/health")
    assert status == 200
    assert health["broker"]["up"] and health["redis"]["up"]
    assert health["assigned_partitions"]


def test_the_worker_process_runs_its_event_loop_on_uvloop(settings, worker):
    """Faust's consumer, the producer, Redis and the web views run on uvloop in the worker's
    process (less CPU for their many small reads, writes and callbacks); /health says so."""
    worker.start()
    status, health = worker.get("/health")
    assert status == 200 and health["event_loop"] == "uvloop"


def test_a_worker_is_healthy_only_once_it_has_read_the_whole_catalogue(settings, worker):
    """A worker answers /health ok (and its stream starts) only after it has applied every
    catalogue record published before it started: before that, an item deleted from the
    catalogue could be served again (a restart replays the catalogue from its start, and an
    item's earlier upsert briefly un-deletes it)."""
    from streams.tools.kafka_io import make_producer

    n = 20_000
    producer = make_producer(settings)
    for i in range(n):
        producer.send(
            settings.topic("items"),
            key=f"it{i}".encode(),
            value=json.dumps(
                {"item_id": f"it{i}", "title": f"item {i}", "tags": ["x", f"t{i % 50}"]}
            ).encode(),
        )
    for i in range(n):
        producer.send(
            settings.topic("items"),
            key=f"it{i}".encode(),
            value=json.dumps({"item_id": f"it{i}", "op": "delete"}).encode(),
        )
    producer.flush()
    producer.close()
    worker.start()  # returns at the first /health 200
    undeleted = [
        f"it{i}" for i in range(n - 1, n - 200, -1) if not worker.get(f"/items/it{i}")[1]["deleted"]
    ]
    assert undeleted == []
    assert worker.get("/health")[1]["catalogue_records"] == 2 * n


def test_an_item_deleted_from_the_catalogue_is_never_recommended_again(
    settings, worker, publish, read_topic, wait_for
):
    worker.start()
    for item in ("hot", "warm1", "warm2"):
        publish({"item_id": item, "title": item, "tags": ["x"]}, key=item, topic="items")
    for n in range(10):
        publish({"user_id": f"h{n}", "item_id": "hot", "event_id": f"h-{n}"})
        if n < 5:  # clearly less popular than "hot"
            publish({"user_id": f"h{n}", "item_id": "warm1", "event_id": f"w-{n}"})
    wait_for(lambda: worker.get("/items/hot")[1]["popularity"] > 9.9, what="hot is popular")
    assert worker.get("/recommendations/someone")[1]["items"][0]["item_id"] == "hot"

    publish({"item_id": "hot", "op": "delete"}, key="hot", topic="items")
    wait_for(lambda: worker.get("/items/hot")[1]["deleted"], what="the delete")
    for n in range(10):  # people still click it (stale pages): it must not come back
        publish({"user_id": f"late{n}", "item_id": "hot", "event_id": f"late-{n}"})
    publish({"user_id": "probe", "item_id": "warm2", "event_id": "probe-1"})

    def probe_served(records: list) -> bool:
        return any(Recommendation.model_validate_json(r.value).user_id == "probe" for r in records)

    served = read_topic("recommendations", probe_served)
    after_delete = [
        Recommendation.model_validate_json(r.value)
        for r in served
        if Recommendation.model_validate_json(r.value).user_id.startswith(("late", "probe"))
    ]
    assert after_delete and all("hot" not in [i.item_id for i in r.items] for r in after_delete)
    for path in ("/recommendations/someone", "/recommendations/probe", "/recommendations/h1"):
        assert "hot" not in [i["item_id"] for i in worker.get(path)[1]["items"]]
    worker.stop()
    worker.start()  # the deletion survives a restart (it is in the model checkpoint)
    assert worker.get("/items/hot")[1]["deleted"] is True
    assert "hot" not in [i["item_id"] for i in worker.get("/recommendations/someone")[1]["items"]]
