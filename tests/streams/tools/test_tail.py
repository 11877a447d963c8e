"""``recstream tail`` prints the recommendations a real worker publishes (Tansu and Redis)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

#: users and how many events each sends
HISTORIES = {"a0": 6, "a1": 6, "a2": 7, "w0": 2, "w1": 1}


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
