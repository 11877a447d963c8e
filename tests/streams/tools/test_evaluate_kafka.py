"""`recstream evaluate --through-kafka` scores the lists a real worker served."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from streams.tools.demo import DemoShop

pytestmark = pytest.mark.integration


def test_streaming_path_scores_what_the_in_process_replay_scores(broker, redis_url, tmp_path):
    shop = DemoShop(n_users=40, n_items=120, seed=3)
    data = tmp_path / "demo.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in shop.events(800)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env.update(RECSTREAM_BROKER=broker.url, RECSTREAM_REDIS_URL=redis_url)
    cmd = [
        sys.executable,
        "-m",
        "streams.tools.cli",
        "evaluate",
        str(data),
        "--format",
        "jsonl",
        "--through-kafka",
        "--json",
        "--no-progress",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    inproc, streamed = result["results"]
    assert inproc["model"] == "hybrid" and streamed["model"] == "hybrid (through kafka)"
    assert inproc["events"] == streamed["events"] == 800
    assert streamed["hr"] > 0.1  # the demo shop is learnable
    # same model code, same per-user order; only cross-user learning order differs
    assert abs(inproc["hr"] - streamed["hr"]) < 0.08, (inproc["hr"], streamed["hr"])
