"""``recstream evaluate``: prequential replay of a data set through the worker's model code.

In process, no broker: events in timestamp order (ties keep file order); for each event and
each model row, first the user's top-k (seen items excluded) is scored against the event's
item, then the row learns the event exactly as the worker does (:func:`models.events.apply_event`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from models.base import UserState
from models.evaluation import Scoreboard
from models.events import apply_event
from models.factory import ROWS, build_row
from models.hybrid import HybridRecommender, SwitchingPolicy
from streams.datasets import DataSet
from streams.schemas import Interaction, ItemEvent

__all__ = ["Row", "evaluate", "format_table"]


@dataclass
class Row:
    name: str
    engine: HybridRecommender
    board: Scoreboard
    users: dict[str, UserState] = field(default_factory=dict)
    seconds: float = 0.0


def evaluate(
    ds: DataSet,
    models: Sequence[str] = ROWS,
    *,
    k: int = 10,
    thresholds: Sequence[int] = (1, 5, 20),
    history: int = 500,
    session_gap: float = 1800.0,
    items: Sequence[dict[str, Any]] = (),
    progress: bool = True,
    seed: int = 42,
) -> dict[str, Any]:
    """Run the replay; returns the JSON-able result object (see ``--json``)."""
    policy = SwitchingPolicy.from_thresholds(thresholds)
    rows = [
        Row(name, build_row(name, thresholds=thresholds, seed=seed), Scoreboard(name, k))
        for name in models
    ]
    catalogue = [ItemEvent.model_validate(it) for it in [*ds.items, *items]]
    for row in rows:
        for item in catalogue:
            if item.op == "delete":
                row.engine.forget_item(item.item_id)
            else:
                row.engine.upsert_item(
                    item.item_id, title=item.title, text=item.text, tags=item.all_tags
                )
    seen_items: set[str] = {it.item_id for it in catalogue if it.op != "delete"}
    n = skipped = 0
    started = time.perf_counter()
    for raw in tqdm(ds.events, desc=f"evaluating {ds.name}", unit="ev", disable=not progress):
        try:
            ev = Interaction.model_validate(raw)
        except ValueError:
            skipped += 1
            continue
        event = ev.to_event(float(n))
        rating = event.rating
        seen_items.add(ev.item_id)
        for row in rows:
            t0 = time.perf_counter()
            user = row.users.get(ev.user_id)
            if user is None:
                user = row.users[ev.user_id] = UserState(ev.user_id, max_history=history)
            phase = policy.phase_for(user.interactions).name
            recs = row.engine.recommend(user, k=k, exclude=user.seen)
            row.board.add([c.item_id for c in recs], ev.item_id, phase)
            predictor = row.engine.sources.get("rating")
            if rating is not None and predictor is not None:
                row.board.add_rating(predictor.predict_rating(ev.user_id, ev.item_id), rating)
            apply_event(row.engine, user, event, idle_gap=session_gap)
            row.seconds += time.perf_counter() - t0
        n += 1
    elapsed = time.perf_counter() - started
    results = []
    for row in rows:
        summary = row.board.summary(len(seen_items))
        summary["events_per_s"] = n / row.seconds if row.seconds else 0.0
        summary["events"] = n
        results.append(summary)
    return {
        "dataset": ds.name,
        "k": k,
        "events": n,
        "skipped": skipped + len(ds.skipped),
        "items": len(seen_items),
        "thresholds": list(thresholds),
        "phases": policy.names,
        "seconds": round(elapsed, 2),
        "results": results,
    }


def format_table(result: dict[str, Any]) -> str:
    k = result["k"]
    lines = [
        f"{result['dataset']}: {result['events']} events, {result['items']} items, k={k}, "
        f"thresholds {result['thresholds']} ({result['seconds']} s)",
        "",
        f"{'model':<24}{'HR@' + str(k):>9}{'NDCG@' + str(k):>9}{'MRR@' + str(k):>9}"
        f"{'cover':>8}{'MAE':>8}{'RMSE':>8}{'ev/s':>9}",
    ]
    for r in result["results"]:
        mae = f"{r['mae']:.4f}" if "mae" in r else "-"
        rmse = f"{r['rmse']:.4f}" if "rmse" in r else "-"
        lines.append(
            f"{r['model']:<24}{r['hr']:>9.4f}{r['ndcg']:>9.4f}{r['mrr']:>9.4f}"
            f"{r['coverage']:>8.3f}{mae:>8}{rmse:>8}{r['events_per_s']:>9.0f}"
        )
    lines += ["", "HR@k by the user's phase at event time (events in brackets)"]
    phases = result["phases"]
    lines.append(f"{'model':<24}" + "".join(f"{p:>20}" for p in phases))
    for r in result["results"]:
        cells = []
        for p in phases:
            t = r["by_phase"].get(p)
            cells.append(f"{t['hr']:.4f} ({t['events']})" if t else "-")
        lines.append(f"{r['model']:<24}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)


def print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, separators=(",", ":")))
    else:
        print(format_table(result))
    sys.stdout.flush()
