"""Micro-benchmark: cost per event of each model's learn_one and recommend, by catalogue size.

    python scripts/bench_models.py [--sizes 1000,10000,100000] [--events 20000] [--models ...]

A synthetic stream (Zipf item popularity, users in sessions of 2-8 items, one tag per item) is
learned by every model; then ``recommend`` is timed for a sample of users. Prints microseconds
per call, measured side by side in one run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from models.base import UserState
from models.events import Event, apply_event
from models.factory import make_sources
from models.registry import REGISTRY


def stream(n_items: int, n_events: int, seed: int = 0) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(seed)
    ranks = rng.zipf(1.2, size=n_events * 2)
    items = [f"i{r % n_items}" for r in ranks if r < 10 * n_items][:n_events]
    users = [f"u{u}" for u in rng.integers(0, max(100, n_events // 20), size=n_events)]
    return [(u, i, 1e9 + n) for n, (u, i) in enumerate(zip(users, items, strict=False))]


def bench(name: str, n_items: int, events: list[tuple[str, str, float]]) -> tuple[float, float]:
    model = make_sources([name])[name]
    rnd = random.Random(1)
    for i in range(n_items):
        model.upsert_item(f"i{i}", title=f"item {i}", tags=[f"tag{rnd.randrange(50)}"])
    users: dict[str, UserState] = {}
    t0 = time.perf_counter()
    for u, item, ts in events:
        state = users.get(u) or users.setdefault(u, UserState(u))
        apply_event(model, state, Event(u, item, ts, "rating", float(1 + len(item) % 5)))
    learn_us = (time.perf_counter() - t0) / len(events) * 1e6
    sample = list(users.values())[:500]
    t0 = time.perf_counter()
    for state in sample:
        model.recommend(state, k=10, exclude=state.seen)
    rec_us = (time.perf_counter() - t0) / len(sample) * 1e6
    return learn_us, rec_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--models", default=",".join(REGISTRY))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    names = args.models.split(",")
    print(f"{args.events} events per run; microseconds per call (learn_one / recommend k=10)")
    print(f"{'model':<12}" + "".join(f"{f'{n:,} items':>24}" for n in sizes))
    streams = {n: stream(n, args.events) for n in sizes}
    for name in names:
        cells = []
        for n in sizes:
            learn_us, rec_us = bench(name, n, streams[n])
            cells.append(f"{learn_us:>10.1f} / {rec_us:>9.1f}")
        print(f"{name:<12}" + "".join(f"{c:>24}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
