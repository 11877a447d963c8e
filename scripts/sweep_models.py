"""Compare variants of single models prequentially: HR@k overall and by phase, one row each.

    python scripts/sweep_models.py PATH --format movielens|csv|jsonl [--stride 4] [--jobs 2] \\
        cf cf:history_decay=0.9 ease ease:l2=300,max_neighbors=200

A variant is ``source[:param=value,...]`` (a source of ``models.registry``, built with its
class's defaults, and constructor arguments as Python literals). Every event is learned; every
``stride``-th event is scored first (the user's seen items excluded), so a sweep runs several
times faster than ``recstream evaluate`` and ranks variants the same way. Figures only; it
changes nothing.
"""

from __future__ import annotations

import argparse
import ast
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from models.base import Recommender, UserState
from models.events import apply_event, apply_item
from models.hybrid import SwitchingPolicy
from models.registry import SPECS
from streams.schemas import Interaction, ItemEvent
from streams.tools.datasets import read_dataset

#: name -> class of every source (the registry's entries)
CLASSES: dict[str, type[Recommender]] = {spec.name: spec.cls for spec in SPECS}


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``"cf:history=10,alpha=0.3"`` -> ``("cf", {"history": 10, "alpha": 0.3})``; values are
    Python literals, tuples included (``"cohort:half_lives=(3600.0, 86400.0)"``)."""
    name, _, params = spec.partition(":")
    if name not in CLASSES:
        raise SystemExit(f"unknown source {name!r}; known: {', '.join(CLASSES)}")
    bad = SystemExit(f"{spec!r}: expected param=value,... with Python literals")
    try:
        call = ast.parse(f"f({params})", mode="eval").body
        if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
            raise bad
        return name, {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}
    except (ValueError, SyntaxError):
        raise bad from None


def run(spec: str, path: str, fmt: str, k: int, stride: int) -> dict[str, Any]:
    name, kwargs = parse_variant(spec)
    model = CLASSES[name](**kwargs)
    ds = read_dataset(path, fmt)
    for raw in ds.items:
        item = ItemEvent.model_validate(raw)
        apply_item(model, item.to_change())
    policy = SwitchingPolicy()
    users: dict[str, UserState] = {}
    hits: dict[str, int] = {p: 0 for p in policy.names}
    scored: dict[str, int] = {p: 0 for p in policy.names}
    started = time.perf_counter()
    for n, raw in enumerate(ds.events):
        ev = Interaction.model_validate(raw)
        user = users.get(ev.user_id) or users.setdefault(ev.user_id, UserState(ev.user_id))
        if n % stride == 0:
            phase = policy.phase_for(user.interactions).name
            recs = model.recommend(user, k=k, exclude=user.seen)
            hits[phase] += any(c.item_id == ev.item_id for c in recs)
            scored[phase] += 1
        apply_event(model, user, ev.to_event(float(n)))
    total = sum(scored.values())
    return {
        "variant": spec,
        "hr": sum(hits.values()) / total if total else 0.0,
        "by_phase": {p: (hits[p] / scored[p] if scored[p] else None, scored[p]) for p in hits},
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--format", required=True, choices=["movielens", "csv", "jsonl"])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--stride", type=int, default=4, help="score every Nth event")
    parser.add_argument("--jobs", type=int, default=1, help="variants run in parallel")
    parser.add_argument("variants", nargs="+", help="source[:param=value,...]")
    args = parser.parse_args()
    for spec in args.variants:
        parse_variant(spec)  # refuse a bad spec before any work starts
    phases = SwitchingPolicy().names
    width = max(44, 2 + max(len(spec) for spec in args.variants))
    print(
        f"{'variant':<{width}}{'HR@' + str(args.k):>8}"
        + "".join(f"{p:>13}" for p in phases)
        + "      s"
    )
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(run, spec, args.path, args.format, args.k, args.stride)
            for spec in args.variants
        ]
        for future in futures:
            r = future.result()
            cells = "".join(
                f"{hr:>13.4f}" if hr is not None else f"{'-':>13}"
                for hr, _ in r["by_phase"].values()
            )
            print(f"{r['variant']:<{width}}{r['hr']:>8.4f}{cells}{r['seconds']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
