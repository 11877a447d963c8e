"""A broker or Redis that is down (issue #17, item 2): within 5 s, one line naming the address
tried and what to do, and exit code 2 — for ``tail``, ``replay``, ``worker`` and ``evaluate
--through-kafka``. (Before: 30 s of silence and a traceback, or "Unable to bootstrap" buried in
62 lines of the worker's log.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from streams.tools.embedded import free_port

pytestmark = pytest.mark.integration

EVENTS = '{"user_id": "u1", "item_id": "i1", "timestamp": 1700000000}\n'


def clean_env(tmp_path, **settings: str) -> dict[str, str]:
    """No RECSTREAM_* but ``settings``, and no run file of a running ``up`` to fall back on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env["RECSTREAM_RUN_FILE"] = str(tmp_path / "no-up-running.env")
    env.update({f"RECSTREAM_{k.upper()}": v for k, v in settings.items()})
    return env


def run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.tools.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


def commands(tmp_path) -> dict[str, list[str]]:
    data = tmp_path / "events.jsonl"
    data.write_text(EVENTS)
    return {
        "tail": ["tail", "--count", "1"],
        "replay": ["replay", str(data), "--format", "jsonl"],
        "worker": ["worker"],
        "evaluate": ["evaluate", str(data), "--format", "jsonl", "--through-kafka"],
    }


@pytest.mark.parametrize("command", ["tail", "replay", "worker", "evaluate"])
def test_a_broker_that_is_down_is_one_line_and_exit_code_2_within_5_s(tmp_path, command):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = clean_env(tmp_path, broker=f"kafka://{address}")
    done, took = run(commands(tmp_path)[command], env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert took < 5.0, f"{command} took {took:.1f} s to say the broker is down"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith(f"recstream {command}: no Kafka broker answers at {address}"), line
    assert "RECSTREAM_BROKER" in line and "recstream up" in line, line
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", ["replay", "worker", "evaluate"])
def test_a_redis_that_is_down_is_one_line_and_exit_code_2_within_5_s(tmp_path, broker, command):
    address = f"127.0.0.1:{free_port()}"
    env = clean_env(tmp_path, broker=broker.url, redis_url=f"redis://{address}/0")
    done, took = run(commands(tmp_path)[command], env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert took < 5.0, f"{command} took {took:.1f} s to say Redis is down"
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"recstream {command}: no Redis answers at {address}"), line
    assert "RECSTREAM_REDIS_URL" in line and "recstream up" in line, line


def test_an_address_from_the_run_file_of_up_says_where_it_came_from(tmp_path):
    port = free_port()
    run_file = tmp_path / "up.env"  # as a running up (this process) would have written it
    run_file.write_text(f"# pid: {os.getpid()}\nexport RECSTREAM_BROKER=kafka://127.0.0.1:{port}\n")
    env = clean_env(tmp_path)
    env["RECSTREAM_RUN_FILE"] = str(run_file)
    done, _ = run(["tail"], env)
    assert done.returncode == 2
    origin = f"(from {run_file}, the run file of `recstream up`)"
    assert f"at 127.0.0.1:{port} {origin}" in done.stderr, done.stderr
