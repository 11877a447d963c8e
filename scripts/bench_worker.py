"""Worker throughput and latency, side by side with a no-op Faust agent on the same broker.

    python scripts/bench_worker.py [--events 20000] [--users 2000]

Starts Tansu on a free port (Redis: RECSTREAM_REDIS_URL, the local one, or an embedded one),
publishes the demo shop's events, then measures (1) a Faust agent that only counts events and
(2) a real ``recstream worker``, each reading the same topic from the start. Prints events/s of
both, their ratio, and the recommendation latency percentiles of the real worker. Nothing is
asserted; the figures are what this machine did in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import redis

from streams.settings import Settings
from streams.tools.demo import DemoShop
from streams.tools.embedded import free_port, start_redis, start_tansu
from streams.tools.kafka_io import consume, ensure_topics, wait_for_broker
from streams.tools.processes import redis_answers, start_worker, stop_process, wait_healthy
from streams.tools.replay import publish_events, publish_items

NOOP_APP = textwrap.dedent(
    """
    import os, sys, time, faust
    broker, topic, group = os.environ["B_BROKER"], os.environ["B_TOPIC"], os.environ["B_GROUP"]
    n = int(os.environ["B_N"])
    app = faust.App(group, broker=broker, store="memory://", web_enabled=False,
                    datadir=os.environ["B_DIR"],
                    broker_rebalance_timeout=4, broker_session_timeout=4,
                    consumer_auto_offset_reset="earliest")
    t = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    seen = 0
    start = None
    @app.agent(t)
    async def count(stream):
        global seen, start
        async for batch in stream.take_events(500, within=0.05):
            start = start or time.perf_counter()
            seen += len(batch)
            if seen >= n:
                print(f"NOOP {seen} {time.perf_counter() - start:.3f}", flush=True)
                os._exit(0)
    app.main()
    """
)


def run_noop(settings: Settings, n: int, workdir: Path) -> float:
    script = workdir / "noop_app.py"
    script.write_text(NOOP_APP)
    env = {
        **os.environ,
        "B_BROKER": settings.broker,
        "B_TOPIC": settings.topic("interactions"),
        "B_N": str(n),
        "B_GROUP": f"noop-{uuid.uuid4().hex[:6]}",
        "B_DIR": str(workdir / "noop-data"),
    }
    proc = subprocess.run(
        [sys.executable, str(script), "worker", "-l", "warn", "--without-web"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    for line in (proc.stdout + proc.stderr).splitlines():
        if "NOOP " in line:
            _, seen, secs = line[line.index("NOOP ") :].split()
            return int(seen) / float(secs)
    raise RuntimeError(f"no-op agent failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def run_worker(settings: Settings, n: int, workdir: Path) -> tuple[float, float, list[float]]:
    """Backlog throughput, then latency under a paced load at half that rate."""
    env = settings.to_env(dict(os.environ))
    env["RECSTREAM_LOG_LEVEL"] = "warn"
    log = workdir / "worker.log"
    proc = start_worker(env, log)
    client = redis.Redis.from_url(settings.redis_url)
    key = f"{settings.app_id}:stats"

    def done() -> int:
        return int(client.hget(key, "events") or 0) + int(client.hget(key, "dead") or 0)

    try:
        wait_healthy(f"http://127.0.0.1:{settings.web_port}", proc, log)
        while done() == 0:
            time.sleep(0.01)
        start = time.perf_counter()
        first = done()
        while done() < n:
            time.sleep(0.05)
        rate = (n - first) / (time.perf_counter() - start)
        paced_rate = max(10.0, rate / 2)
        paced = list(DemoShop(n_users=500, n_items=2000, seed=12).events(int(paced_rate * 10)))
        publish_events(settings, paced, rate=paced_rate, desc="paced", progress=False)
        while done() < n + len(paced):
            time.sleep(0.05)
    finally:
        stop_process(proc)
    latencies = []
    for rec in consume(settings, "recommendations", from_beginning=True, timeout_ms=2000):
        if rec is None:
            break
        msg = json.loads(rec.value)
        if str(msg.get("event_id", "")).startswith("demo-12-") and msg["latency_ms"] is not None:
            latencies.append(msg["latency_ms"])
    return rate, paced_rate, sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=2_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    tansu = start_tansu(workdir=workdir)
    extra = []
    url = os.environ.get("RECSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not redis_answers(url):
        extra.append(start_redis(workdir=workdir))
        url = extra[-1].url
    app_id = f"bench-{uuid.uuid4().hex[:6]}"
    settings = Settings(
        broker=tansu.url,
        redis_url=url,
        app_id=app_id,
        topic_prefix=f"{app_id}.",
        web_port=free_port(),
    )
    try:
        wait_for_broker(settings.bootstrap_servers)
        ensure_topics(settings)
        shop = DemoShop(n_users=args.users, n_items=2000, seed=11)
        publish_items(settings, shop.items)
        publish_events(settings, shop.events(args.events), total=args.events, desc="publishing")
        noop = run_noop(settings, args.events, workdir)
        rate, paced_rate, lat = run_worker(settings, args.events, workdir)
        pct = {p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] for p in (50, 95, 99)}
        print(f"\n{args.events} demo events, {args.users} users, 2000 items, one worker")
        print(f"  no-op Faust agent    {noop:>9.0f} events/s")
        print(f"  recstream worker     {rate:>9.0f} events/s   ({rate / noop:.1%} of the no-op)")
        print(
            f"  latency at {paced_rate:.0f} events/s (arrival -> list built): "
            f"p50 {pct[50]:.0f} ms  p95 {pct[95]:.0f} ms  p99 {pct[99]:.0f} ms"
        )
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{app_id}:*"))
        if keys:
            client.delete(*keys)
        for svc in [*extra, tansu]:
            svc.stop()


if __name__ == "__main__":
    main()
