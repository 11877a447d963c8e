"""Micro-benchmark: each model's cost per event, learning and ranking in the worker's batches.

    python scripts/bench_models.py [--sizes 1000,10000,100000] [--events 20000]
                                   [--models hybrid,cf,...] [--batch 500] [--users 5000]

The fixed stream of ``recstream bench`` (users interleaved in short sessions, Zipf(1.0) item
popularity, a catalogue with titles and tags) goes through each model as the worker takes it:
in batches of ``--batch`` events, each learned with :func:`models.events.apply_events`, then a
list ranked for every user the batch touched (:meth:`HybridRecommender.recommend_batch`; one
source alone is an evaluation row: the hybrid with that source only). Prints microseconds of
CPU per event, learning / ranking, for each catalogue size, measured side by side in one run;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

from models.base import UserState
from models.events import Event, ItemChange, apply_events, apply_item
from models.factory import ROWS, build_row
from streams.tools.bench import bench_items, bench_stream


def bench(name: str, n_items: int, n_events: int, n_users: int, batch: int) -> tuple[float, float]:
    """CPU microseconds per event: learning, ranking."""
    model = build_row(name)
    for item in bench_items(n_items):
        apply_item(
            model, ItemChange(item["item_id"], title=item["title"], tags=tuple(item["tags"]))
        )
    events = [
        Event(e["user_id"], e["item_id"], 1.7e9 + n, e["type"], None, e["session_id"])
        for n, e in enumerate(bench_stream(n_events, n_users, n_items))
    ]
    users: dict[str, UserState] = {}
    learn = rank = 0.0
    for lo in range(0, len(events), batch):
        part = events[lo : lo + batch]
        for event in part:
            users.setdefault(event.user_id, UserState(event.user_id))
        t0 = time.process_time()
        apply_events(model, users, part)
        t1 = time.process_time()
        touched = [users[uid] for uid in dict.fromkeys(e.user_id for e in part)]
        model.recommend_batch(touched, 10, [u.seen for u in touched])
        t2 = time.process_time()
        learn, rank = learn + t1 - t0, rank + t2 - t1
    return learn / len(events) * 1e6, rank / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--models", default=",".join(ROWS))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{args.events} events of {args.users} users, batches of {args.batch}; "
        "CPU microseconds per event, learning / ranking"
    )
    print(f"{'model':<12}" + "".join(f"{f'{n:,} items':>22}" for n in sizes))
    for name in args.models.split(","):
        cells = []
        for n in sizes:
            learn_us, rank_us = bench(name, n, args.events, args.users, args.batch)
            cells.append(f"{learn_us:>9.1f} / {rank_us:>8.1f}")
        print(f"{name:<12}" + "".join(f"{c:>22}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
