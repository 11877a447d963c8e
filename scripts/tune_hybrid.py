"""Search blend weights for each phase of the switching hybrid, prequentially, in one pass.

    python scripts/tune_hybrid.py PATH --format movielens|csv|jsonl [--stride 4] [--limit N]

The sources learn independently of what is served, so one prequential pass can record every
source's top candidates before each (sampled) event, and any weighting of those lists can then
be scored offline. For each phase this prints the single sources' HR@k and the best weights
found by a grid over normalised-score blends (the hybrid's own rule). Figures only; it changes
nothing: copy weights you trust into ``models/registry.py`` (each source's ``weights``) and
confirm with ``recstream evaluate``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models import registry
from models.base import UserState
from models.events import apply_event, apply_item
from models.factory import make_sources
from models.hybrid import DEFAULT_PHASES, HybridRecommender, SwitchingPolicy
from streams.schemas import Interaction, ItemEvent
from streams.tools.datasets import read_dataset

SOURCES = registry.ranked()  # every candidate source
GRID = (0.0, 0.1, 0.25, 0.5, 1.0)


def collect(path: str, fmt: str, k: int, stride: int, limit: int | None, n_cand: int):
    ds = read_dataset(path, fmt)
    events = ds.events[:limit] if limit else ds.events
    sources = make_sources(list(SOURCES))
    everything = HybridRecommender(sources)  # learns every source; ranking is done here
    for it in ds.items:
        item = ItemEvent.model_validate(it)
        for model in sources.values():
            apply_item(model, item.to_change())
    policy = SwitchingPolicy()
    users: dict[str, UserState] = {}
    samples = []  # (phase, target, {source: [(item, score), ...]})
    for n, raw in enumerate(tqdm(events, desc="prequential pass", unit="ev")):
        ev = Interaction.model_validate(raw)
        user = users.get(ev.user_id) or users.setdefault(ev.user_id, UserState(ev.user_id))
        if n % stride == 0:
            seen = user.seen
            lists = {
                name: [(c.item_id, c.score) for c in m.recommend(user, k=n_cand, exclude=seen)]
                for name, m in sources.items()
            }
            samples.append((policy.phase_for(user.interactions).name, ev.item_id, lists))
        apply_event(everything, user, ev.to_event(float(n)))
    return samples


def tensor(rows: list, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Samples as a (n, U, sources) array of per-source max-normalised scores + target column.

    A row's columns are its candidates in item-id order, so that a tie in the blended score goes
    to the lower column, as the hybrid breaks ties (by item id)."""
    width = max(len({i for n in names for i, _ in lists[n]}) for _, _, lists in rows) or 1
    S = np.zeros((len(rows), width, len(names)), dtype=np.float32)
    target = np.full(len(rows), -1, dtype=np.int64)
    for r, (_, tgt, lists) in enumerate(rows):
        union = {i for n in names for i, sc in lists[n] if sc > 0}
        col = {item: c for c, item in enumerate(sorted(union))}
        for j, name in enumerate(names):
            cands = [(i, sc) for i, sc in lists[name] if sc > 0]
            top = max((sc for _, sc in cands), default=0.0)
            for item, sc in cands:
                S[r, col[item], j] = sc / top
        target[r] = col.get(tgt, -1)
    return S, target


def hit_rate(S: np.ndarray, target: np.ndarray, w: np.ndarray, k: int) -> float:
    blended = S @ w
    rows = np.arange(len(target))
    t = np.where(target >= 0, blended[rows, np.maximum(target, 0)], 0.0)
    tied_before = np.arange(blended.shape[1])[None, :] < target[:, None]
    better = ((blended > t[:, None]) | ((blended == t[:, None]) & tied_before)).sum(axis=1)
    return float(((target >= 0) & (t > 0) & (better < k)).mean())


def coordinate_ascent(S, target, k, start: np.ndarray) -> tuple[float, np.ndarray]:
    w, best = start.copy(), hit_rate(S, target, start, k)
    for _ in range(4):
        improved = False
        for j in range(len(w)):
            for v in GRID:
                trial = w.copy()
                trial[j] = v
                if not trial.any():
                    continue
                hr = hit_rate(S, target, trial, k)
                if hr > best + 1e-9:
                    best, w, improved = hr, trial, True
        if not improved:
            break
    return best, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--format", required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--stride", type=int, default=4, help="score every Nth event")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument(
        "--try",
        dest="try_file",
        help="JSON {phase: [{source: weight}, ...]}: weightings to score beside the defaults",
    )
    args = parser.parse_args()
    tries = json.loads(Path(args.try_file).read_text()) if args.try_file else {}
    samples = collect(args.path, args.format, args.k, args.stride, args.limit, args.candidates)
    by_phase: dict[str, list] = defaultdict(list)
    for s in samples:
        by_phase[s[0]].append(s)
    for phase, rows in by_phase.items():
        S, target = tensor(rows, SOURCES)
        single = {}
        for j, name in enumerate(SOURCES):
            w = np.zeros(len(SOURCES), dtype=np.float32)
            w[j] = 1.0
            single[name] = hit_rate(S, target, w, args.k)
        best = max(single, key=single.__getitem__)
        start = np.array([1.0 if n == best else 0.0 for n in SOURCES], dtype=np.float32)
        hr, w = coordinate_ascent(S, target, args.k, start)
        print(
            f"\n{phase}: {len(rows)} scored events; single sources HR@{args.k}: "
            + ", ".join(f"{n} {v:.4f}" for n, v in single.items())
        )
        weights = {n: float(x) for n, x in zip(SOURCES, w, strict=True) if x}
        print(
            f"  best blend HR@{args.k} {hr:.4f} (best single {best} {single[best]:.4f}): {weights}",
            flush=True,
        )
        default = next((p.weights for p in DEFAULT_PHASES if p.name == phase), {})
        for label, cand in [("default", default)] + [("try", t) for t in tries.get(phase, [])]:
            vec = np.array([cand.get(n, 0.0) for n in SOURCES], dtype=np.float32)
            if vec.any():
                hr_c = hit_rate(S, target, vec, args.k)
                print(f"  {label:<8} HR@{args.k} {hr_c:.4f}: {dict(cand)}", flush=True)


if __name__ == "__main__":
    main()
