"""``recstream evaluate``: prequential replay of a data set through the worker's model code.

In process, no broker: the data set's events in timestamp order (ties keep file order) go
through :func:`models.prequential.prequential` (score, then learn exactly as the worker does);
this module reads, validates and prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from models.events import Event
from models.factory import ROWS, build_row
from models.prequential import prequential
from streams.schemas import Interaction, ItemEvent
from streams.tools.datasets import DataSet

__all__ = ["evaluate", "format_table", "print_result"]


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
    batch: int = 1,
) -> dict[str, Any]:
    """Replay ``ds`` through each row of ``models``, in batches of ``batch`` events as the
    worker takes them (1: the strict per-event protocol); returns the JSON-able result
    (``--json``). Events that fail validation are skipped and counted."""
    rows = {name: build_row(name, thresholds=thresholds, seed=seed) for name in models}
    catalogue = [ItemEvent.model_validate(it).to_change() for it in [*ds.items, *items]]
    events: list[Event] = []
    skipped = 0
    for raw in ds.events:
        try:  # an event without a timestamp takes its position in the stream
            events.append(Interaction.model_validate(raw).to_event(float(len(events))))
        except ValueError:
            skipped += 1
    bar = tqdm(events, desc=f"evaluating {ds.name}", unit="ev", disable=not progress)
    result = prequential(
        rows,
        bar,
        k=k,
        thresholds=thresholds,
        history=history,
        session_gap=session_gap,
        catalogue=catalogue,
        batch=batch,
    )
    return {"dataset": ds.name, "skipped": skipped + len(ds.skipped), **result}


def format_table(result: dict[str, Any]) -> str:
    k = result["k"]
    lines = [
        f"{result['dataset']}: {result['events']} events, {result['items']} items, k={k}, "
        f"thresholds {result['thresholds']}, batches of {result.get('batch', 1)} "
        f"({result['seconds']} s)",
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
