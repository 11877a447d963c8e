"""Prequential (test-then-learn) evaluation: the metric code, pure and unit-tested.

For each event in time order, every model is first asked for the user's top-k (already-seen
items excluded); the event's item is a hit if it is in that list, at rank ``r`` (0-based) it
scores NDCG ``1 / log2(r + 2)`` and reciprocal rank ``1 / (r + 1)``. Then the model learns the
event. Coverage is the share of the catalogue (every item seen in the stream) that was ever
recommended.

>>> board = Scoreboard("demo", k=3)
>>> board.add(["a", "b", "c"], "b", phase="warm"), board.add(["a", "b", "c"], "z", phase="cold")
(1.0, 0.0)
>>> s = board.summary(catalogue_size=4)
>>> s["hr"], round(s["ndcg"], 4), s["mrr"], s["coverage"], s["by_phase"]["warm"]["hr"]
(0.5, 0.3155, 0.25, 0.75, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PhaseTally", "Scoreboard", "rank_metrics"]


def rank_metrics(recommended: Sequence[str], target: str, k: int) -> tuple[float, float, float]:
    """(hit, ndcg, reciprocal rank) of ``target`` in the first ``k`` of ``recommended``.

    >>> rank_metrics(["x", "y"], "y", k=10)
    (1.0, 0.6309297535714575, 0.5)
    >>> rank_metrics(["x", "y"], "y", k=1)
    (0.0, 0.0, 0.0)
    """
    top = list(recommended[:k])
    if target not in top:
        return 0.0, 0.0, 0.0
    r = top.index(target)
    return 1.0, 1.0 / math.log2(r + 2), 1.0 / (r + 1)


@dataclass
class PhaseTally:
    events: int = 0
    hits: float = 0.0
    ndcg: float = 0.0
    rr: float = 0.0

    def add(self, hit: float, ndcg: float, rr: float) -> None:
        self.events += 1
        self.hits += hit
        self.ndcg += ndcg
        self.rr += rr

    def rates(self) -> dict[str, float]:
        n = max(self.events, 1)
        return {
            "events": self.events,
            "hr": self.hits / n,
            "ndcg": self.ndcg / n,
            "mrr": self.rr / n,
        }


@dataclass
class Scoreboard:
    """Accumulates one model's prequential results, overall and per phase."""

    model: str
    k: int = 10
    total: PhaseTally = field(default_factory=PhaseTally)
    phases: dict[str, PhaseTally] = field(default_factory=dict)
    recommended: set[str] = field(default_factory=set)
    abs_err: float = 0.0
    sq_err: float = 0.0
    rated: int = 0

    def add(self, recommended: Sequence[str], target: str, phase: str) -> float:
        hit, ndcg, rr = rank_metrics(recommended, target, self.k)
        self.total.add(hit, ndcg, rr)
        self.phases.setdefault(phase, PhaseTally()).add(hit, ndcg, rr)
        self.recommended.update(recommended[: self.k])
        return hit

    def add_rating(self, predicted: float, actual: float) -> None:
        self.abs_err += abs(predicted - actual)
        self.sq_err += (predicted - actual) ** 2
        self.rated += 1

    def summary(self, catalogue_size: int) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, **self.total.rates()}
        out["coverage"] = len(self.recommended) / catalogue_size if catalogue_size else 0.0
        out["by_phase"] = {name: t.rates() for name, t in self.phases.items()}
        if self.rated:
            out["mae"] = self.abs_err / self.rated
            out["rmse"] = math.sqrt(self.sq_err / self.rated)
        return out
