"""``recstream bench``: the pipeline's throughput and latency beside a no-op agent's, in one run.

On the embedded broker (Tansu) and a Redis of its own, both on free ports, with the same topic
layout and the worker's consumer settings (batch size, batch wait, fetch wait):

1. **no-op**: a Faust agent that takes the ``interactions`` topic in the worker's batches and
   only counts them reads a stream published unpaced (as fast as the producer goes) while it
   runs: ``noop_events_per_s``;
2. **pipeline, unpaced**: real ``recstream worker`` processes (``--workers``: one consumer
   group) read the same stream on topics of their own, published unpaced too:
   ``pipeline_events_per_s`` and their ratio to the no-op's, and ``latency_ms``, each list's
   arrival -> publish time (the triggering event's broker timestamp to the list's);
3. **pipeline, paced**: then more of the stream at ``--rate`` events/s:
   ``latency_at_rate_ms``, and ``checkpoints_at_rate``, the model checkpoints the workers
   wrote meanwhile (each slows the worker while its child pickles: the p99 moves with it).

With ``--warmup N`` the workers first learn and rank the stream's first ``N`` events (published
unpaced, not measured: ``warmup_events_per_s``), so that the measured parts are what a worker
that has run that long pays per event: its models grown and its users' histories longer (the
cost per event grows with both; docs/PERFORMANCE.md, *Against the stream's length*).

Each phase's CPU time too, read from ``/proc`` (every thread of the processes; the forked
checkpoint children not counted): ``noop_cpu_us_per_event``, ``pipeline_cpu_us_per_event``
(the workers', unpaced), their ``cpu_ratio`` (no-op / pipeline: the events/s ratio each would
have on a core of its own, less moved by a busy machine than the wall-time ratio) and
``cpu_us_per_event_at_rate``; and ``source_cpu_us_per_event``, what each model source (its
learning and its proposals) and the blend cost the workers' event loops per event of the
unpaced part (their ``/stats``' ``model_cpu_seconds`` before and after it, each read once
the workers have counted every batch up to then). Then
``worker_peak_rss_mb`` (the largest peak resident set of
the workers) and ``redis_bytes_per_user`` (Redis's own ``MEMORY USAGE`` of the user states
and of the lists last published to them, per user). Events per second count from the moment
the stream starts being published to the moment its last event is processed (the producer is
faster than either reader, so this is the reader's pace).
``--json`` prints everything as one object on the last line; a progress bar goes to stderr.
Nothing is asserted: the figures are what this machine did in this run.

The stream is fixed (seeded): ``--events`` interactions from ``--users`` interleaved users over
``--items`` catalogue items (published first, with titles and tags), item popularity
Zipf(1.0), short sessions (1 to 6 events, each with its session id); no timestamps (the broker's
arrival time is the event time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from streams.settings import Settings
from streams.tools.processes import interrupted_by_signals

__all__ = ["BenchConfig", "bench_items", "bench_stream", "main", "percentiles", "run_bench"]

_KINDS = ("view", "click", "click", "click", "add_to_cart", "purchase")
_TAGS = 40  # catalogue tags (genres), drawn with a skew


@dataclass(frozen=True)
class BenchConfig:
    """What ``recstream bench`` runs (its options)."""

    events: int = 20_000
    users: int = 5_000
    items: int = 10_000
    workers: int = 1
    rate: float = 1_000.0
    paced_events: int | None = None  # default: 10 seconds at ``rate``, at most ``events``
    warmup: int = 0  # events the workers learn first, not measured
    seed: int = 16
    progress: bool = True

    @property
    def paced(self) -> int:
        if self.paced_events is not None:
            return self.paced_events
        return max(1, min(self.events, int(10 * self.rate)))


def bench_items(n_items: int, seed: int = 16) -> list[dict[str, Any]]:
    """The catalogue: ``i<n>`` with a title and one or two tags (genres, a few common)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tags = np.minimum(rng.zipf(1.5, size=(n_items, 2)) - 1, _TAGS - 1)
    out = []
    for i in range(n_items):
        mine = [f"genre{tags[i, 0]}"] + ([f"genre{tags[i, 1]}"] if i % 3 == 0 else [])
        out.append({"item_id": f"i{i}", "op": "upsert", "title": f"Item {i}", "tags": mine})
    return out


def bench_stream(
    n_events: int, n_users: int, n_items: int, seed: int = 16
) -> Iterator[dict[str, Any]]:
    """``n_events`` interactions: a uniformly drawn user each time (users interleave), in
    sessions of 1 to 6 events, items by Zipf(1.0) popularity over ``n_items`` (an item's rank
    is a fixed random permutation of the ids). The first ``k`` events of a longer stream with
    the same arguments are this stream's.

    >>> events = list(bench_stream(500, 50, 100))
    >>> len(events), len({e["user_id"] for e in events}) <= 50, events[0]["event_id"]
    (500, True, 'bench-16-0')
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1)
    cdf = np.cumsum(weights) / weights.sum()
    rank_to_item = rng.permutation(n_items)
    sessions: dict[int, tuple[str, int]] = {}
    for e in range(n_events):
        user = int(rng.integers(n_users))
        sid, left = sessions.get(user, ("", 0))
        if left <= 0:
            sid, left = f"s{user}-{e}", int(rng.integers(1, 7))
        sessions[user] = (sid, left - 1)
        rank = min(int(np.searchsorted(cdf, rng.random())), n_items - 1)
        yield {
            "event_id": f"bench-{seed}-{e}",
            "user_id": f"u{user}",
            "item_id": f"i{rank_to_item[rank]}",
            "type": _KINDS[int(rng.integers(len(_KINDS)))],
            "session_id": sid,
        }


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of ``values`` (None when there are none).

    >>> percentiles([float(v) for v in range(1, 101)])
    {'p50': 50.5, 'p95': 95.05, 'p99': 99.01}
    """
    import numpy as np

    if not values:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


# -- the no-op agent (run as ``python -m streams.tools.bench --noop``) ----------------------


def _noop_main() -> None:
    """A Faust app configured as the worker's (``RECSTREAM_*``), one agent on ``interactions``
    taking the worker's batches and counting them; writes ``<count> <time>`` per batch to the
    file ``BENCH_NOOP_OUT`` names (Faust takes over the process's stdout)."""
    import faust  # noqa: F401  (the worker's dependency)

    from streams.settings import load_settings
    from streams.worker.app import faust_app, faust_worker, use_uvloop

    use_uvloop()  # the worker's event loop
    settings = load_settings()
    out = open(os.environ["BENCH_NOOP_OUT"], "a", buffering=1)  # noqa: SIM115
    app = faust_app(settings)
    topic = app.topic(
        settings.topic("interactions"),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    seen = 0

    @app.agent(topic, concurrency=1)
    async def count(stream: Any) -> None:
        nonlocal seen
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_wait):
            seen += len(batch)
            out.write(f"{seen} {time.time():.6f}\n")

    faust_worker(app, "warn").execute_from_commandline()


# -- the run --------------------------------------------------------------------------------


class _Counts:
    """The no-op agent's ``<count> <time>`` lines, read from its file as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, float]] = []
        self._at = 0

    @property
    def count(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self._at)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        done = chunk.rfind(b"\n") + 1
        self._at += done
        for line in chunk[:done].decode().splitlines():
            count, at = line.split()
            self.seen.append((int(count), float(at)))
        return self.seen[-1][0] if self.seen else 0

    def last_at(self) -> float:
        return self.seen[-1][1]


def _wait(
    done: Callable[[], int],
    target: int,
    bar: tqdm,
    alive: Callable[[], bool],
    timeout: float,
    what: str,
) -> None:
    start, shown = time.monotonic(), 0
    while True:
        n = done()
        if n > shown:
            bar.update(min(n, target) - shown)
            shown = min(n, target)
        if n >= target:
            return
        if not alive():
            raise RuntimeError(f"{what} stopped before processing {target} events ({n} done)")
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: {n} of {target} events after {timeout:.0f} s")
        time.sleep(0.005)


def _publish_in_background(
    settings: Settings, events: list[dict[str, Any]], rate: float | None = None
) -> threading.Thread:
    from streams.tools.replay import publish_events

    thread = threading.Thread(
        target=publish_events,
        args=(settings, events),
        kwargs={"rate": rate, "progress": False},
        daemon=True,
    )
    thread.start()
    return thread


def _settings(base: Settings, **changes: Any) -> Settings:
    return Settings(**{**base.model_dump(), **changes})


def _warm_up(settings: Settings) -> None:
    from streams.tools.replay import publish_events

    event = {"event_id": "bench-warm-up", "user_id": "bench-warm-up", "item_id": "i0"}
    publish_events(settings, [event], progress=False)


def _noop(
    settings: Settings, events: list[dict[str, Any]], workdir: Path, cfg: BenchConfig
) -> tuple[float, float | None]:
    """Events/s of the no-op agent reading ``events`` as they are published, and its CPU
    microseconds per event meanwhile."""
    from streams.tools.embedded import free_port
    from streams.tools.kafka_io import ensure_topics

    noop = _settings(
        settings,
        app_id=f"{settings.app_id}-noop",
        topic_prefix=f"{settings.app_id}-noop.",
        web_port=free_port(),
    )
    ensure_topics(noop)
    counts = workdir / "noop.counts"
    env = noop.to_env({**os.environ, "TMPDIR": str(workdir), "BENCH_NOOP_OUT": str(counts)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.tools.bench", "--noop"],
        env=env,
        stdout=(workdir / "noop.log").open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    lines = _Counts(counts)
    alive = lambda: proc.poll() is None  # noqa: E731
    try:
        with tqdm(
            total=len(events), desc="no-op agent", unit="ev", disable=not cfg.progress
        ) as bar:
            _warm_up(noop)
            _wait(lambda: lines.count, 1, tqdm(disable=True), alive, 120.0, "the no-op agent")
            base = lines.count
            cpu = _CpuClock([proc.pid])
            started = time.time()
            _publish_in_background(noop, events)
            _wait(lambda: lines.count - base, len(events), bar, alive, 600.0, "the no-op agent")
            cpu_per_event = cpu.per_event(len(events))
    finally:
        from streams.tools.processes import stop_process

        stop_process(proc)
    return len(events) / max(lines.last_at() - started, 1e-9), cpu_per_event


def _counts(client: Any, key: str) -> dict[str, int]:
    """The workers' counts of records applied, dead-lettered and found duplicate."""
    fields = ["events", "dead", "duplicates"]
    return {f: int(v or 0) for f, v in zip(fields, client.hmget(key, fields), strict=True)}


def _stats(client: Any, key: str) -> int:
    return sum(_counts(client, key).values())


def _skipped(client: Any, key: str) -> dict[str, int]:
    """The records the workers dead-lettered or found duplicate over the whole run: none, in a
    run that measured what it published (each event once, every one valid)."""
    counts = _counts(client, key)
    return {"dead": counts["dead"], "duplicates": counts["duplicates"]}


class _CpuClock:
    """The CPU time (user and system, every thread) that processes use from now on, read from
    ``/proc`` (Linux; ``None`` elsewhere): less moved by a busy machine than events per second
    of wall time, since a process waiting for a core uses none."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self._now()

    def _now(self) -> float | None:
        from streams.tools.processes import proc_stat

        total = 0
        for pid in self.pids:
            fields = proc_stat(pid)
            if len(fields) <= 12:
                return None
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def per_event(self, events: int) -> float | None:
        """CPU microseconds per event since the start (or the last call); restarts the clock."""
        now = self._now()
        spent = None if now is None or self.start is None else now - self.start
        self.start = now
        return round(spent / events * 1e6, 1) if spent is not None and events else None


def _worker_stats(bases: list[str], timeout: float = 15.0) -> list[dict[str, Any]] | None:
    """Each worker's ``/stats``; None if one does not answer."""
    from streams.tools.processes import http_json

    out = []
    for base in bases:
        try:
            status, stats = http_json(f"{base}/stats", timeout=timeout)
        except (OSError, ValueError):
            return None
        if status != 200 or not isinstance(stats, dict):
            return None
        out.append(stats)
    return out


def _checkpoints_written(bases: list[str]) -> int | None:
    """The model checkpoints the workers have written so far, summed (None: a worker did
    not answer)."""
    answers = _worker_stats(bases)
    if answers is None:
        return None
    return sum(int(stats.get("checkpoints", {}).get("written", 0)) for stats in answers)


def _model_cpu(
    bases: list[str], records: int, timeout: float = 15.0
) -> dict[str, dict[str, float]] | None:
    """The workers' CPU seconds in each model source and stage so far (their ``/stats``'
    ``model_cpu_seconds``), summed over the workers, once their own counts have taken in
    ``records`` records (a worker adds a batch's costs to them just after it commits the
    batch, which is what the caller counted); None if a worker does not answer or they do
    not get there within ``timeout`` (the figure is then left out, the run goes on)."""
    deadline = time.monotonic() + timeout
    while True:
        total: dict[str, dict[str, float]] = {}
        seen = 0
        answers = _worker_stats(bases, timeout)
        if answers is None:
            return None
        for stats in answers:
            seen += int(stats.get("totals", {}).get("records", 0))
            for source, stages in stats.get("model_cpu_seconds", {}).items():
                for stage, seconds in stages.items():
                    row = total.setdefault(source, {})
                    row[stage] = row.get(stage, 0.0) + seconds
        if seen >= records:
            return total
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _per_event(
    after: dict[str, dict[str, float]], before: dict[str, dict[str, float]], events: int
) -> dict[str, dict[str, float]]:
    """µs of CPU per event in each source and stage between two :func:`_model_cpu` readings,
    the costliest source first.

    >>> _per_event({"cf": {"learn": 0.5, "rank": 1.0}, "seq": {"learn": 3.0}},
    ...            {"cf": {"learn": 0.25}}, 1000)
    {'seq': {'learn': 3000.0}, 'cf': {'learn': 250.0, 'rank': 1000.0}}
    """
    out = {
        source: {
            stage: round((s - before.get(source, {}).get(stage, 0.0)) / max(events, 1) * 1e6, 1)
            for stage, s in stages.items()
        }
        for source, stages in after.items()
    }
    return dict(sorted(out.items(), key=lambda kv: -sum(kv[1].values())))


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def _latencies(settings: Settings, wanted: set[str]) -> list[float]:
    """Arrival -> publish of each list triggered by one of ``wanted`` (event ids), in ms: the
    list's broker timestamp less its event's."""
    from streams.tools.kafka_io import consume

    arrived: dict[str, int] = {}
    for rec in consume(settings, "interactions", from_beginning=True, timeout_ms=3000):
        if rec is None:
            break
        eid = json.loads(rec.value).get("event_id")
        if eid in wanted:
            arrived[eid] = rec.timestamp
    out = []
    for rec in consume(settings, "recommendations", from_beginning=True, timeout_ms=3000):
        if rec is None:
            break
        eid = json.loads(rec.value).get("event_id")
        if eid in arrived:
            out.append(float(rec.timestamp - arrived[eid]))
    return out


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """The whole benchmark (see the module docstring); the JSON-able result."""
    import redis

    from state.store import bytes_per_user
    from streams.tools.embedded import free_port, start_redis, start_tansu
    from streams.tools.kafka_io import ensure_topics, wait_for_broker
    from streams.tools.replay import publish_events, publish_items
    from streams.tools.up import Workers

    workdir = Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    services = []
    started = time.monotonic()
    try:
        tansu = start_tansu(workdir=workdir)
        services.append(tansu)
        store = start_redis(workdir=workdir)
        services.append(store)
        app_id = f"bench-{uuid.uuid4().hex[:6]}"
        settings = Settings(
            broker=tansu.url,
            redis_url=store.url,
            app_id=app_id,
            topic_prefix=f"{app_id}.",
            web_port=free_port(),
            log_level="warn",
        )
        wait_for_broker(settings.bootstrap_servers)
        stream = list(
            bench_stream(cfg.warmup + cfg.events + cfg.paced, cfg.users, cfg.items, cfg.seed)
        )
        warm, stream = stream[: cfg.warmup], stream[cfg.warmup :]
        unpaced, paced = stream[: cfg.events], stream[cfg.events :]
        noop_rate, noop_cpu = _noop(settings, unpaced, workdir, cfg)

        ensure_topics(settings)
        publish_items(settings, bench_items(cfg.items, cfg.seed))
        client = redis.Redis.from_url(settings.redis_url)
        key = f"{app_id}:stats"
        env = settings.to_env({**os.environ})
        workers = Workers(settings, env, workdir, cfg.workers)
        try:
            workers.wait_healthy()
            _warm_up(settings)
            done = lambda: _stats(client, key)  # noqa: E731
            _wait(done, 1, tqdm(disable=True), workers.alive, 120.0, "the workers")
            base = done()
            warm_rate = None
            if warm:
                with tqdm(
                    total=len(warm), desc="warm-up", unit="ev", disable=not cfg.progress
                ) as bar:
                    t0 = time.time()
                    _publish_in_background(settings, warm)
                    limit = max(900.0, len(warm) / 50)  # however slow, at least 50 events/s
                    learned = lambda: done() - base  # noqa: E731
                    _wait(learned, len(warm), bar, workers.alive, limit, "the workers")
                    warm_rate = len(warm) / max(time.time() - t0, 1e-9)
                base = done()
            with tqdm(
                total=len(unpaced), desc="pipeline", unit="ev", disable=not cfg.progress
            ) as bar:
                cpu = _CpuClock([p.pid for p in workers.procs])
                models_before = _model_cpu(workers.bases, base)
                t0 = time.time()
                _publish_in_background(settings, unpaced)
                _wait(lambda: done() - base, len(unpaced), bar, workers.alive, 900.0, "the workers")
                pipeline_rate = len(unpaced) / max(time.time() - t0, 1e-9)
                pipeline_cpu = cpu.per_event(len(unpaced))
                models_after = _model_cpu(workers.bases, done())
                by_source = (
                    _per_event(models_after, models_before, len(unpaced))
                    if models_before is not None and models_after is not None
                    else None
                )
            base = done()
            checkpoints_before = _checkpoints_written(workers.bases)
            with tqdm(
                total=len(paced), desc=f"paced {cfg.rate:g}/s", unit="ev", disable=not cfg.progress
            ) as bar:
                publish_events(settings, paced, rate=cfg.rate, progress=False)
                _wait(lambda: done() - base, len(paced), bar, workers.alive, 600.0, "the workers")
                paced_cpu = cpu.per_event(len(paced))
            checkpoints_after = _checkpoints_written(workers.bases)
            rss = [_peak_rss_mb(p.pid) for p in workers.procs]
        finally:
            workers.stop()
        lat = _latencies(settings, {e["event_id"] for e in unpaced})
        lat_rate = _latencies(settings, {e["event_id"] for e in paced})
        known = [r for r in rss if r is not None]
        return {
            "events": cfg.events,
            "warmup": cfg.warmup,
            "warmup_events_per_s": round(warm_rate, 1) if warm_rate is not None else None,
            "users": cfg.users,
            "items": cfg.items,
            "workers": cfg.workers,
            "batch_size": settings.batch_size,
            "partitions": settings.partitions,
            "noop_events_per_s": round(noop_rate, 1),
            "pipeline_events_per_s": round(pipeline_rate, 1),
            "ratio": round(pipeline_rate / noop_rate, 4) if noop_rate else None,
            "noop_cpu_us_per_event": noop_cpu,
            "pipeline_cpu_us_per_event": pipeline_cpu,
            "cpu_ratio": round(noop_cpu / pipeline_cpu, 4) if noop_cpu and pipeline_cpu else None,
            "cpu_us_per_event_at_rate": paced_cpu,
            "source_cpu_us_per_event": by_source,
            "latency_ms": percentiles(lat),
            "rate": cfg.rate,
            "paced_events": len(paced),
            "latency_at_rate_ms": percentiles(lat_rate),
            "checkpoints_at_rate": (
                checkpoints_after - checkpoints_before
                if checkpoints_before is not None and checkpoints_after is not None
                else None
            ),
            "worker_peak_rss_mb": max(known) if known else None,
            "redis_bytes_per_user": bytes_per_user(client, app_id),
            "lists": {"unpaced": len(lat), "paced": len(lat_rate)},
            "skipped": _skipped(client, key),
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        for svc in reversed(services):
            svc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def format_result(r: dict[str, Any]) -> str:
    def ms(p: dict[str, Any]) -> str:
        return " ".join(f"{k} {v:.0f} ms" if v is not None else f"{k} -" for k, v in p.items())

    return "\n".join(
        [
            f"{r['events']} events, {r['users']} users, {r['items']} items, "
            f"{r['workers']} worker(s), batches of {r['batch_size']}, {r['partitions']} partitions"
            + (
                f"; measured after {r['warmup']} events learned first"
                f" ({r['warmup_events_per_s']:.0f} events/s)"
                if r.get("warmup")
                else ""
            ),
            f"  no-op Faust agent   {r['noop_events_per_s']:>9.0f} events/s",
            f"  recstream pipeline  {r['pipeline_events_per_s']:>9.0f} events/s "
            f"({r['ratio']:.1%} of the no-op)",
            f"  CPU per event: no-op {r['noop_cpu_us_per_event']} µs, pipeline "
            f"{r['pipeline_cpu_us_per_event']} µs (no-op/pipeline {r['cpu_ratio']}); "
            f"at {r['rate']:g} events/s {r['cpu_us_per_event_at_rate']} µs",
            f"  latency, unpaced (arrival -> publish): {ms(r['latency_ms'])}",
            f"  latency at {r['rate']:g} events/s:          {ms(r['latency_at_rate_ms'])}"
            f" ({r.get('checkpoints_at_rate')} model checkpoint(s) written meanwhile)",
            f"  worker peak RSS {r['worker_peak_rss_mb']} MB; Redis {r['redis_bytes_per_user']} "
            "bytes per user state",
            "  the models' CPU per event on the workers' event loops, unpaced: "
            + _by_source(r.get("source_cpu_us_per_event") or {}),
        ]
    )


def _by_source(table: dict[str, dict[str, float]]) -> str:
    """
    >>> _by_source({"seq": {"learn": 60.0, "rank": 70.0}, "blend": {"rank": 90.0}})
    'seq 130 µs (learn 60, rank 70), blend 90 µs'
    """
    return ", ".join(
        f"{source} {sum(stages.values()):.0f} µs"
        + (f" ({', '.join(f'{k} {v:.0f}' for k, v in stages.items())})" if len(stages) > 1 else "")
        for source, stages in table.items()
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``recstream bench``'s options (the CLI's subcommand and ``python -m`` share them)."""
    d = BenchConfig()
    for flag, default, what in (
        ("--events", d.events, "events published unpaced"),
        ("--users", d.users, "users the stream interleaves"),
        ("--items", d.items, "catalogue items"),
        ("--workers", d.workers, "worker processes in one consumer group"),
    ):
        p.add_argument(
            flag, type=int, default=default, metavar="N", help=f"{what} (default {default})"
        )
    p.add_argument(
        "--rate",
        type=float,
        default=d.rate,
        metavar="R",
        help=f"paced events/s (default {d.rate:g})",
    )
    p.add_argument(
        "--paced-events",
        type=int,
        default=None,
        metavar="N",
        help="events published at --rate (default: 10 s worth, at most --events)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=d.warmup,
        metavar="N",
        help="events the workers learn first, not measured: what a worker that has run that "
        f"long pays per event (default {d.warmup})",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run_from_args(args: argparse.Namespace) -> int:
    for name in ("events", "users", "items", "workers"):
        if getattr(args, name) < 1:
            print(f"recstream bench: --{name} must be >= 1", file=sys.stderr)
            return 2
    if args.rate <= 0 or (args.paced_events is not None and args.paced_events < 1):
        print("recstream bench: --rate and --paced-events must be > 0", file=sys.stderr)
        return 2
    if args.warmup < 0:
        print("recstream bench: --warmup must be >= 0", file=sys.stderr)
        return 2
    cfg = BenchConfig(
        events=args.events,
        users=args.users,
        items=args.items,
        workers=args.workers,
        rate=args.rate,
        paced_events=args.paced_events,
        warmup=args.warmup,
        progress=not args.no_progress,
    )
    try:
        with interrupted_by_signals():  # `kill` stops what it started, as ^C does
            result = run_bench(cfg)
    except KeyboardInterrupt:
        print("recstream bench: interrupted; what it started is stopped", file=sys.stderr)
        return 130
    print(json.dumps(result, separators=(",", ":")) if args.json else format_result(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--noop"]:
        _noop_main()
        return 0
    parser = argparse.ArgumentParser(prog="recstream bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
