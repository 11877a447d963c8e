"""``recstream tail`` prints the recommendations a real worker publishes (Tansu and Redis)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: users and how many events each sends
HISTORIES = {"a0": 6, "a1": 6, "a2": 7, "w0": 2, "w1": 1}


@pytest.mark.integration
def test_tail_prints_recommendations_for_one_user(worker, publish, worker_env):
    worker.start()
    for user, count in HISTORIES.items():  # one batch may hold a user's events: one message
        for i in range(count):  # per user per batch
            publish({"user_id": user, "item_id": f"i{(i * 3) % 7}", "event_id": f"{user}-{i}"})
    tail = [sys.executable, "-m", "streams.tools.cli", "tail", "--from-beginning"]
    out = subprocess.run(
        [*tail, "--user", "a0", "--count", "1"], env=worker_env, capture_output=True, timeout=90
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    (line,) = out.stdout.decode().splitlines()
    assert " a0  " in line and " ms  after a0-" in line and " -> " in line
    out = subprocess.run(
        [*tail, "--count", "3", "--json"], env=worker_env, capture_output=True, timeout=60
    )
    messages = [json.loads(x) for x in out.stdout.decode().splitlines()]
    assert len(messages) == 3 and {m["user_id"] for m in messages} <= set(HISTORIES)


def test_a_line_shows_each_items_title_when_the_catalogue_has_one():
    # issue #17, item 5: lists showed ids only although the catalogue has titles
    from streams.schemas import RecItem, Recommendation
    from streams.tools.tail import format_recommendation

    rec = Recommendation(
        user_id="u42",
        strategy="active",
        interactions=7,
        event_id="e7",
        generated_at=0.0,
        latency_ms=38.5,
        items=[
            RecItem(item_id="sku-3", score=0.9, sources=["cf"], title="Trail shoe"),
            RecItem(item_id="sku-8", score=0.5, sources=["session"]),
            RecItem(item_id="sku-9", score=0.4, sources=["content"], title="x" * 60),
        ],
    )
    line = format_recommendation(rec)
    assert line.endswith(
        f'->  sku-3 "Trail shoe" [cf]  sku-8 [session]  sku-9 "{"x" * 29}…" [content]'
    ), line
