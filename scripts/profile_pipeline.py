"""Where one worker's CPU goes per event, in process: no broker, a real Redis.

Drives :class:`~streams.worker.processor.BatchProcessor` with ``recstream bench``'s stream in
the worker's batches, against the Redis at ``--redis`` (a key prefix of its own, deleted after),
and prints CPU microseconds per event for each stage of a batch: process (parse, Redis read,
learning, ranking, messages), the Redis commit, the messages' JSON for the producer, and the
model checkpoint's pickle. ``--profile`` adds cProfile's top functions.

    python scripts/profile_pipeline.py --events 10000 --items 10000 --users 5000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
import uuid

from models import collect_garbage_rarely
from models.checkpoint import dump_checkpoint_bytes
from state.store import RedisState
from streams.schemas import encode
from streams.settings import Settings
from streams.tools.bench import bench_items, bench_stream
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.records import Record
from streams.worker.runtime import WorkerRuntime


async def run(args: argparse.Namespace) -> None:
    collect_garbage_rarely()  # as the worker's process does
    settings = Settings(redis_url=args.redis, app_id=f"profile-{uuid.uuid4().hex[:8]}")
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
        for i, e in enumerate(bench_stream(args.events, args.users, args.items))
    ]
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
            for rec in out.recommendations:
                encode(rec)
            for upd in out.updates:
                encode(upd)
            t3 = time.process_time()
            if prof:
                prof.disable()
            lists += len(out.recommendations)
            stages["process"] += t1 - t
            stages["commit"] += t2 - t1
            stages["messages"] += t3 - t2
        t = time.process_time()
        blob = dump_checkpoint_bytes(owner.engine)
        stages["checkpoint"] = time.process_time() - t
    finally:
        await store.delete_all()
        await store.close()
    n = len(records)
    print(f"{n} events, {lists} lists, {args.items} items, {args.users} users")
    for name, secs in stages.items():
        if name == "checkpoint":
            print(f"  checkpoint pickle: {secs * 1000:.0f} ms for {len(blob) / 1e6:.1f} MB (once)")
        else:
            print(f"  {name:<10} {secs / n * 1e6:8.0f} µs/event")
    total = sum(v for k, v in stages.items() if k != "checkpoint")
    print(f"  total      {total / n * 1e6:8.0f} µs/event ({n / total:.0f} events/s of CPU)")
    if prof:
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


def _json(obj: dict) -> bytes:
    import json

    return json.dumps(obj).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
