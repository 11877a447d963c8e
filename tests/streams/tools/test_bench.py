"""``recstream bench``: its fixed stream, and one whole run on a tiny stream (no speed asserted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from streams.tools.bench import (
    _checkpoints_written,
    _model_cpu,
    bench_items,
    bench_stream,
    percentiles,
)
from streams.tools.cli import build_parser
from streams.tools.embedded import free_port


def test_the_stream_is_fixed_interleaved_in_short_sessions_with_a_popularity_skew() -> None:
    events = list(bench_stream(5000, 400, 1000))
    assert events == list(bench_stream(5000, 400, 1000))  # fixed
    assert list(bench_stream(100, 400, 1000)) == events[:100]  # a prefix of a longer one
    users = [e["user_id"] for e in events]
    assert len(set(users)) > 350  # interleaved: most users show up
    runs = Counter(e["session_id"] for e in events)
    assert max(runs.values()) <= 6 and min(runs.values()) >= 1
    by_item = Counter(e["item_id"] for e in events).most_common()
    assert by_item[0][1] > 20 * by_item[len(by_item) // 2][1]  # Zipf: a head and a long tail
    assert {e["item_id"] for e in events} <= {it["item_id"] for it in bench_items(1000)}


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert percentiles([5.0]) == {"p50": 5.0, "p95": 5.0, "p99": 5.0}


def test_the_cli_takes_bench_and_evaluate_batch() -> None:
    args = build_parser().parse_args(["bench", "--events", "10", "--workers", "2", "--json"])
    assert (args.events, args.workers, args.json, args.rate) == (10, 2, True, 1000.0)
    args = build_parser().parse_args(["evaluate", "x", "--format", "csv", "--batch", "7"])
    assert args.batch == 7
    assert build_parser().parse_args(["evaluate", "x", "--format", "csv"]).batch is None


@pytest.mark.integration
@pytest.mark.timeout(400)
def test_a_tiny_run_after_a_warm_up_prints_every_figure_on_the_last_line() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.tools.cli",
            "bench",
            "--events",
            "300",
            "--users",
            "40",
            "--items",
            "80",
            "--rate",
            "100",
            "--paced-events",
            "300",
            "--warmup",
            "120",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=380,
        # checkpoints every 0.2 s (or 20 times as long as the last took): several in the
        # paced part's 3 s
        env={**os.environ, "RECSTREAM_CHECKPOINT_INTERVAL": "0.2"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for key in (
        "noop_events_per_s",
        "pipeline_events_per_s",
        "ratio",
        "latency_ms",
        "rate",
        "latency_at_rate_ms",
        "worker_peak_rss_mb",
        "redis_bytes_per_user",
        "noop_cpu_us_per_event",
        "pipeline_cpu_us_per_event",
        "cpu_ratio",
        "cpu_us_per_event_at_rate",
    ):
        assert key in result, key
    assert result["noop_events_per_s"] > 0 and result["pipeline_events_per_s"] > 0
    # the processes' own CPU time: the pipeline learns and ranks, the no-op only counts
    assert 0 < result["noop_cpu_us_per_event"] < result["pipeline_cpu_us_per_event"]
    assert result["cpu_ratio"] == pytest.approx(
        result["noop_cpu_us_per_event"] / result["pipeline_cpu_us_per_event"], rel=1e-3
    )
    assert result["cpu_us_per_event_at_rate"] > 0
    # each source's share of the workers' event loop, unpaced: every source learned, the
    # blend ranked, and together they are part of the workers' whole CPU per event
    by_source = result["source_cpu_us_per_event"]
    assert {"cf", "seq", "ease", "blend"} <= set(by_source)
    assert all(stages.get("learn", 1.0) > 0 for stages in by_source.values())
    models = sum(v for stages in by_source.values() for v in stages.values())
    assert 0 < models < result["pipeline_cpu_us_per_event"]
    assert result["ratio"] == pytest.approx(
        result["pipeline_events_per_s"] / result["noop_events_per_s"], rel=0.01
    )
    for lat in (result["latency_ms"], result["latency_at_rate_ms"]):
        assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"] < 60_000
    assert result["rate"] == 100 and result["lists"]["paced"] > 0
    assert result["checkpoints_at_rate"] >= 1  # counted from the workers' /stats
    # the warm-up's events were learned first, and the measured part's events are others:
    # none of them a duplicate the workers skipped
    assert result["warmup"] == 120 and result["warmup_events_per_s"] > 0
    assert result["skipped"] == {"dead": 0, "duplicates": 0}
    assert 20 < result["worker_peak_rss_mb"] < 4000
    assert 100 < result["redis_bytes_per_user"] < 100_000
    assert all(bar in run.stderr for bar in ("no-op agent", "warm-up", "pipeline"))


def test_a_worker_that_does_not_answer_leaves_the_per_source_costs_out() -> None:
    nobody = [f"http://127.0.0.1:{free_port()}"]  # nothing listens there
    assert _model_cpu(nobody, 0) is None and _checkpoints_written(nobody) is None


def _children(pid: int) -> list[int]:
    return [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_bench_stopped_by_a_signal_stops_what_it_started_and_removes_its_folder(
    tmp_path, sig: signal.Signals
) -> None:
    """`kill` (or a closed terminal) stops the bench as ^C does: its broker, Redis and workers
    go with it, and its folder is removed (they were left running, Python's default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env.update(TMPDIR=str(tmp_path), RECSTREAM_REBALANCE_TIMEOUT="3")
    cmd = [sys.executable, "-m", "streams.tools.cli", "bench", "--events", "20000"]
    proc = subprocess.Popen(
        [*cmd, "--users", "40", "--items", "80", "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(started) < 3:  # broker, Redis, a worker
            started.update(_children(proc.pid))
            time.sleep(0.2)
        assert len(started) >= 3, f"the bench started {started}"
        assert [p.name for p in tmp_path.iterdir()], "no run folder"
    finally:
        os.kill(proc.pid, sig)
        code = proc.wait(60)
    time.sleep(1)
    alive = [p for p in started if os.path.exists(f"/proc/{p}")]
    for p in alive:  # not left behind for the next test either
        os.kill(p, signal.SIGKILL)
    assert not alive, f"processes left running: {alive}"
    assert code != 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("recstream-bench-")]
