"""``recstream evaluate --through-kafka``: score the lists a real worker actually served.

A broker (embedded Tansu unless ``RECSTREAM_BROKER`` is set), Redis and a worker are started
with a fresh app id; the data set is published to ``interactions``; every published
``Recommendation`` is read back. The worker runs with batches of one event, so the list served
to a user before their j-th event is the message published after their (j-1)-th: exactly what
the in-process replay scores. The events are published at most ``max_lag`` ahead of the
workers (:data:`streams.tools.pacing.EVALUATE_MAX_LAG`). Only the first event of each user
differs: nothing was published to a user before their first event, so it counts as a miss here
(the in-process replay scores it against the cold-start list).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from tqdm import tqdm

from models.evaluation import Scoreboard
from models.hybrid import SwitchingPolicy
from streams.schemas import Interaction
from streams.settings import Settings, load_settings
from streams.tools.datasets import DataSet
from streams.tools.embedded import Service, free_port, start_redis, start_tansu
from streams.tools.kafka_io import consume, ensure_topics, wait_for_broker
from streams.tools.pacing import EVALUATE_MAX_LAG
from streams.tools.processes import redis_answers, start_worker, stop_process, wait_healthy
from streams.tools.replay import publish_events, publish_items, worker_pace

__all__ = ["ServingStopped", "evaluate_through_kafka"]


class ServingStopped(RuntimeError):
    """The workers stopped serving lists before every event was served."""


def evaluate_through_kafka(
    ds: DataSet,
    base: Settings | None = None,
    *,
    k: int = 10,
    progress: bool = True,
    workers: int = 1,
    max_lag: int | None = EVALUATE_MAX_LAG,
) -> dict[str, Any]:
    """Publish ``ds`` through a broker and ``workers`` workers in one group (``base``'s broker
    and Redis when they are set, else started here), at most ``max_lag`` events ahead of the
    workers (0: as fast as the producer goes), and score the lists served. The run's
    folder (logs) is removed afterwards unless something failed."""
    base = base if base is not None else load_settings()
    services: list[Service] = []
    workdir = Path(tempfile.mkdtemp(prefix="recstream-eval-"))
    procs: list[Any] = []
    app_id = f"eval-{uuid.uuid4().hex[:8]}"
    failed = True
    try:
        broker = base.broker
        if not base.is_set("broker"):
            services.append(start_tansu(workdir=workdir))
            broker = services[-1].url
        redis_url = base.redis_url
        if not redis_answers(redis_url):
            services.append(start_redis(workdir=workdir))
            redis_url = services[-1].url
        settings = base.model_copy(
            update={
                "broker": broker,
                "redis_url": redis_url,
                "app_id": app_id,
                "topic_prefix": f"{app_id}.",
                "web_port": free_port(),
                "k": k,
                "batch_size": 1,
                "checkpoint_interval": 30.0,
            }
        )
        wait_for_broker(settings.bootstrap_servers)
        ensure_topics(settings)
        (workdir / "tmp").mkdir()  # the worker's temporary files (Faust's data) go here too
        env = settings.to_env({**os.environ, "TMPDIR": str(workdir / "tmp")})
        for n in range(workers):
            port = settings.web_port if n == 0 else free_port()
            log = workdir / f"worker{n}.log"
            procs.append(start_worker({**env, "RECSTREAM_WEB_PORT": str(port)}, log))
            wait_healthy(f"http://{settings.web_host}:{port}", procs[-1], log)
        events = [e for e in ds.events if _valid(e)]
        if ds.items:
            publish_items(settings, ds.items)
            time.sleep(1.0)
        started = time.perf_counter()

        def alive() -> bool:
            return any(proc.poll() is None for proc in procs)

        pace = worker_pace(settings, max_lag, alive) if max_lag != 0 else None
        try:
            publish_events(
                settings, events, total=len(events), desc="publishing", progress=progress, pace=pace
            )
        finally:
            if pace is not None:
                pace.close()
        served = _read_served(settings, len(events), progress, alive)
        elapsed = time.perf_counter() - started
        failed = False
    finally:
        for proc in procs:
            stop_process(proc)
        for svc in reversed(services):
            svc.stop()
        if not any(s.name == "redis" for s in services):
            client = redis.Redis.from_url(base.redis_url)
            keys = list(client.scan_iter(match=f"{app_id}:*", count=1000))
            if keys:
                client.delete(*keys)
        if failed:
            print(f"the worker's log is kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result = _score(ds, events, served, settings, k, elapsed, workers)
    result["results"][0]["max_lag"] = max_lag
    return result


def _valid(event: dict[str, Any]) -> bool:
    try:
        Interaction.model_validate(event)
        return True
    except ValueError:
        return False


def _read_served(
    settings: Settings, n: int, progress: bool, alive: Callable[[], bool]
) -> dict[str, list[dict]]:
    served: dict[str, list[dict]] = defaultdict(list)
    got, idle_since = 0, time.monotonic()
    bar = tqdm(total=n, desc="served lists", unit="msg", disable=not progress)
    for rec in consume(settings, "recommendations", from_beginning=True):
        if rec is None:
            if time.monotonic() - idle_since > 120:
                raise ServingStopped(f"no list for 120 s, after {got} of {n} lists")
            if not alive():
                raise ServingStopped(f"every worker exited, after {got} of {n} lists")
            continue
        idle_since = time.monotonic()
        msg = json.loads(rec.value)
        served[msg["user_id"]].append(msg)
        got += 1
        bar.update(1)
        if got >= n:
            break
    bar.close()
    return served


def _score(
    ds: DataSet,
    events: list[dict[str, Any]],
    served: dict[str, list[dict]],
    settings: Settings,
    k: int,
    elapsed: float,
    workers: int = 1,
) -> dict[str, Any]:
    name = (
        "hybrid (through kafka)" if workers == 1 else f"hybrid (through kafka, {workers} workers)"
    )
    board = Scoreboard(name, k)
    policy = SwitchingPolicy.from_thresholds(settings.thresholds)
    position: dict[str, int] = defaultdict(int)
    items: set[str] = {str(i["item_id"]) for i in ds.items}
    for event in events:
        user, item = str(event["user_id"]), str(event["item_id"])
        items.add(item)
        j = position[user]
        position[user] += 1
        lists = served.get(user, [])
        previous = lists[j - 1] if 0 < j <= len(lists) else None
        ranked = [i["item_id"] for i in previous["items"]] if previous else []
        phase = previous["strategy"] if previous else policy.phase_for(0).name
        board.add(ranked, item, phase)
    summary = board.summary(len(items))
    latencies = sorted(m["latency_ms"] for ms in served.values() for m in ms if m["latency_ms"])
    summary["events"] = len(events)
    summary["events_per_s"] = len(events) / elapsed if elapsed else 0.0
    if latencies:
        summary["latency_ms_p50"] = latencies[len(latencies) // 2]
        summary["latency_ms_p95"] = latencies[int(len(latencies) * 0.95)]
    return {
        "dataset": ds.name,
        "k": k,
        "events": len(events),
        "items": len(items),
        "thresholds": list(settings.thresholds),
        "phases": policy.names,
        "seconds": round(elapsed, 2),
        "results": [summary],
    }
