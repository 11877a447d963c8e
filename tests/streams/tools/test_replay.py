"""``recstream replay`` says what it did (issue #17, items 1 and 4): invalid rows with counts
and the first reasons (``--strict`` stops at the first, publishing nothing), pacing to the
workers by default, and at the end how far behind the workers are."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ROWS = [
    "user_id,item_id,timestamp",
    "a,i1,1700000001",
    ",i2,1700000002",  # line 3: empty user_id
    "b,i3,notatime",  # line 4: not a time
    "c,i4,1700000004",
    "d,,1700000005",  # line 6: empty item_id
    "e,i6,1700000006",
    "f,i7,12",  # line 8: before 1990
    "g,i8,1700000008",
    "h,i9,1700000009",
    "k,i10,1700000010",
]
VALID = 6


def replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.tools.cli", "replay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_invalid_rows_are_counted_and_the_first_reasons_shown(tmp_path, worker_env, read_topic):
    data = tmp_path / "clicks.csv"
    data.write_text("\n".join(ROWS) + "\n")
    done = replay(worker_env, str(data), "--format", "csv", "--max-lag", "0")
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert f"{len(ROWS) - 1 - VALID} of {len(ROWS) - 1} rows are not valid events" in err, err
    shown = re.findall(r"^  line (\d+): (\w+)", err, flags=re.MULTILINE)
    assert shown == [("3", "user_id"), ("4", "timestamp"), ("6", "item_id"), ("8", "timestamp")]
    assert "--strict" in err
    assert f"published {VALID} events" in done.stdout, done.stdout
    assert len(read_topic("interactions", until=lambda r: len(r) >= VALID)) == VALID


def test_strict_stops_at_the_first_invalid_row_and_publishes_nothing(
    tmp_path, worker_env, read_topic
):
    data = tmp_path / "clicks.csv"
    data.write_text("\n".join(ROWS) + "\n")
    done = replay(worker_env, str(data), "--format", "csv", "--strict")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "line 3: user_id" in line and "nothing published" in line, line
    assert read_topic("interactions", until=lambda r: True, timeout=5) == []


def test_replay_is_paced_to_the_workers_by_default_and_ends_with_how_far_behind_they_are(
    tmp_path, worker, worker_env
):
    worker.start()
    data = tmp_path / "clicks.csv"
    data.write_text("\n".join(ROWS) + "\n")
    done = replay(worker_env, str(data), "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert f"publishing {VALID} events paced to the workers" in done.stdout, done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(f"published {VALID} events"), last
    # six events: the worker has them within the two seconds replay watches it
    assert last.endswith("the workers have processed every event published"), last
    flood = replay(worker_env, str(data), "--format", "csv", "--max-lag", "0")
    assert "as fast as possible (--max-lag 0)" in flood.stdout, flood.stdout
    assert "the workers have processed every event published" in flood.stdout, flood.stdout
