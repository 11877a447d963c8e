"""Where one worker's CPU goes per event, in process: no broker, a real Redis.

Drives :class:`~streams.worker.processor.BatchProcessor` with ``recstream bench``'s stream in
the worker's batches, against the Redis at ``--redis`` (a key prefix of its own, deleted after),
and prints CPU microseconds per event for each stage of a batch: process (parse, Redis read,
learning, ranking, the lists' JSON), the Redis commit, the model updates' JSON for the
producer, and the model checkpoint's pickle. ``--profile`` adds cProfile's top functions;
``--by-source`` a table of each source's CPU per event (its ``propose`` and ``learn_many``,
and the blend) for each window of ``--window`` events, so that what grows as the models fill
is seen.

    python scripts/profile_pipeline.py --events 10000 --items 10000 --users 5000
    python scripts/profile_pipeline.py --events 30000 --by-source --batch 100
    python scripts/profile_pipeline.py --warmup 30000 --events 2000 --batch 10 --by-source
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import time
import uuid
from collections.abc import Callable
from typing import Any

from models import collect_garbage_rarely
from models import hybrid as hybrid_module
from models.checkpoint import dump_checkpoint_bytes
from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.schemas import encode
from streams.settings import Settings
from streams.tools.bench import bench_items, bench_stream
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.records import Record
from streams.worker.runtime import WorkerRuntime

#: Batch size of the ``--warmup`` events (the worker's default).
WARMUP_BATCH = 500


async def run(args: argparse.Namespace) -> None:
    collect_garbage_rarely()  # as the worker's process does
    collecting = _CollectorClock()
    settings = Settings(
        redis_url=args.redis,
        app_id=f"profile-{uuid.uuid4().hex[:8]}",
        batch_size=args.batch or Settings().batch_size,
    )
    store = RedisState(settings.redis_url, settings.app_id)
    owner = ModelOwner.from_settings(settings, store, "profile")
    titles: dict[str, str] = {}
    proc = BatchProcessor(settings, store, owner, "interactions", titles=titles)
    rt = WorkerRuntime.__new__(WorkerRuntime)  # only apply_catalogue: no Redis or broker
    rt.models, rt.titles, rt.catalogue_records = owner, titles, 0
    for item in bench_items(args.items):
        rt.apply_catalogue(_json(item))
    now = time.time()
    records = [
        Record(value=_json(e), partition=i % 12, offset=i // 12, timestamp=now, key=None)
        for i, e in enumerate(bench_stream(args.warmup + args.events, args.users, args.items))
    ]
    warm, records = records[: args.warmup], records[args.warmup :]
    for start in range(0, len(warm), WARMUP_BATCH):  # the models grown first, not measured
        await proc.commit(await proc.process(warm[start : start + WARMUP_BATCH]))
    clock = _SourceClock(owner.engine) if args.by_source else None
    windows: list[dict[str, float]] = []
    stages = dict.fromkeys(["process", "commit", "messages", "checkpoint"], 0.0)
    prof = cProfile.Profile() if args.profile else None
    lists = 0
    try:
        for start in range(0, len(records), settings.batch_size):
            chunk = records[start : start + settings.batch_size]
            t = time.process_time()
            if prof:
                prof.enable()
            out = await proc.process(chunk)
            t1 = time.process_time()
            await proc.commit(out)
            t2 = time.process_time()
            for upd in out.updates:  # (the lists' JSON is built in process)
                encode(upd)
            t3 = time.process_time()
            if prof:
                prof.disable()
            lists += len(out.recommendations)
            del out  # not held through the next batch: its containers, young, slow collections
            stages["process"] += t1 - t
            stages["commit"] += t2 - t1
            stages["messages"] += t3 - t2
            if clock is not None:
                clock.add("(batch: process)", t1 - t)
                if (start + len(chunk)) // args.window > start // args.window:
                    windows.append(clock.take())
        if clock is not None:
            clock.stop()
        t = time.process_time()
        blob = dump_checkpoint_bytes(owner.engine)
        stages["checkpoint"] = time.process_time() - t
    finally:
        await store.delete_all()
        await store.close()
    n = len(records)
    print(f"{n} events, {lists} lists, {args.items} items, {args.users} users", end="")
    print(f", after {args.warmup} events not measured" if args.warmup else "")
    for name, secs in stages.items():
        if name == "checkpoint":
            print(f"  checkpoint pickle: {secs * 1000:.0f} ms for {len(blob) / 1e6:.1f} MB (once)")
        else:
            print(f"  {name:<10} {secs / n * 1e6:8.0f} µs/event")
    total = sum(v for k, v in stages.items() if k != "checkpoint")
    print(f"  total      {total / n * 1e6:8.0f} µs/event ({n / total:.0f} events/s of CPU)")
    # in the worker, Faust's own allocations between batches set the collector off on few
    # tracked objects (~70 ms in a whole bench run); here batches follow each other at once
    print(f"  of which garbage collections {collecting.stop() / n * 1e6:.0f} µs/event")
    if prof:
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
    if windows:
        print(
            f"CPU µs per event, by window of {args.window} events"
            f" (batches of {settings.batch_size})"
        )
        last = windows[-1]
        for name in sorted({k for w in windows for k in w}, key=lambda k: -last.get(k, 0.0)):
            cells = " ".join(f"{w.get(name, 0.0) / args.window * 1e6:6.0f}" for w in windows)
            print(f"  {name:<24} {cells}")


class _CollectorClock:
    """Wall time spent in the garbage collector, from :data:`gc.callbacks`."""

    def __init__(self) -> None:
        self.spent, self.started = 0.0, 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.spent += time.perf_counter() - self.started

    def stop(self) -> float:
        gc.callbacks.remove(self._on)
        return self.spent


class _SourceClock:
    """Times each source's ``propose`` and ``learn_many`` and the hybrid's blend, by wrapping
    them on the instances (removed again by :meth:`stop`, before the checkpoint's pickle)."""

    def __init__(self, engine: HybridRecommender) -> None:
        self.spent: dict[str, float] = {}
        self.wrapped: list[tuple[object, str]] = []
        for name, source in engine.sources.items():
            for method in ("propose", "learn_many"):
                self._wrap(source, method, f"{name} {method}")
        self._blend = hybrid_module.blend
        hybrid_module.blend = self._timed(self._blend, "(blend)")

    def _timed(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(label, time.process_time() - t)

        return timed

    def _wrap(self, obj: object, method: str, label: str) -> None:
        setattr(obj, method, self._timed(getattr(obj, method), label))
        self.wrapped.append((obj, method))

    def add(self, label: str, seconds: float) -> None:
        self.spent[label] = self.spent.get(label, 0.0) + seconds

    def take(self) -> dict[str, float]:
        spent, self.spent = self.spent, {}
        return spent

    def stop(self) -> None:
        for obj, method in self.wrapped:
            delattr(obj, method)
        hybrid_module.blend = self._blend


def _json(obj: dict) -> bytes:
    import json

    return json.dumps(obj).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events measured")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help=f"events learned and ranked first, in batches of {WARMUP_BATCH}, not measured "
        "(the models as far into the stream as that)",
    )
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--batch", type=int, default=0, help="batch size (default the worker's)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument(
        "--by-source", action="store_true", help="CPU per event of each source, by window"
    )
    parser.add_argument("--window", type=int, default=5_000, help="events per --by-source window")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
