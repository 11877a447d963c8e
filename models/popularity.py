"""Time-decayed popularity: what is trending now, in bounded memory.

Each interaction adds ``weight * 2 ** ((ts - t0) / half_life)`` to its item's score, so
comparing scores compares exponentially decayed counts without touching every item on each
event (the forward-decay trick, :func:`models.common.forward_boost`). Scores are renormalised
when the exponent grows large. At most ``capacity`` items are tracked: when full, the weaker
half is dropped (a heavy item is never evicted by a burst of new, rare ones), so memory stays
bounded for catalogues of millions.

>>> pop = DecayedPopularity(half_life=3600.0)
>>> from models.base import UserState
>>> u = UserState("u1")
>>> for item in ["a", "b", "b", "c", "b", "c"]:
...     pop.learn_one(u, item, ts=0.0)
>>> [c.item_id for c in pop.recommend(u, k=2)]
['b', 'c']
>>> [c.item_id for c in pop.recommend(u, k=2, exclude={"b"})]
['c', 'a']
>>> pop.trending(1), pop.score("a")
([('b', 3.0)], 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.common import (
    MAX_WEIGHT,
    add_row,
    decay_factor,
    forward_boost,
    grown,
    positive_evidence,
    top_rows,
)

__all__ = ["DecayedPopularity"]


class DecayedPopularity(Recommender):
    """Exponentially decayed interaction counts per item, top-N in O(n) with numpy.

    Parameters:
        half_life: seconds after which an interaction counts half as much.
        capacity: most items tracked at once; the weaker half is evicted when it is reached.
    """

    name = "popularity"
    explains = False  # popular is not a reason of the user's
    #: The rows of a top ``_best_k`` (all rows with a count when fewer have one) with their
    #: counts, kept up to date as counts grow once :meth:`in_top` has asked for it; None
    #: until then and after a rescale, an eviction or a forgotten item (class-level:
    #: checkpoints from before it lack it).
    _best: dict[int, float] | None = None
    _best_k: int = 0
    _best_low: float = 0.0  # the lowest count in _best

    def __init__(self, half_life: float = 7 * 24 * 3600.0, capacity: int = 200_000) -> None:
        if half_life <= 0 or capacity < 2:
            raise ValueError("half_life must be > 0 and capacity >= 2")
        self.half_life = half_life
        self.capacity = capacity
        self._index: dict[str, int] = {}
        self._items: list[str] = []
        self._scores = np.zeros(1024, dtype=np.float64)
        self._t0: float | None = None
        self._now: float = 0.0
        self._top: list[int] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _rescale(self, factor: float) -> None:
        self._scores[: len(self._items)] *= factor
        self._best = None

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        if positive_evidence(weight, ts):
            self._add(item_id, ts, min(weight, MAX_WEIGHT))

    def _add(self, item_id: str, ts: float, weight: float) -> None:
        """Count an event of ``item_id`` at ``ts`` of ``weight`` (positive, at most
        :data:`~models.common.MAX_WEIGHT`)."""
        self._now = max(self._now, ts)
        idx = self._index.get(item_id)
        if idx is None:
            if len(self._items) >= self.capacity:
                self._evict()
            idx = add_row(self._index, self._items, item_id)
            self._scores = grown(self._scores, idx)
        # the boost first: a rescale it triggers must scale this item's score too
        boost, self._t0 = forward_boost(
            self._t0, ts, self.half_life, self._rescale, min_exponent=-math.inf
        )
        score = float(self._scores[idx]) + weight * boost
        self._scores[idx] = score
        self._top = None
        best = self._best
        if best is not None and (idx in best or score > self._best_low or len(best) < self._best_k):
            best[idx] = score
            if len(best) > self._best_k:  # it pushed the lowest (one of the lowest) out
                del best[min(best, key=best.__getitem__)]
            self._best_low = min(best.values())

    def _evict(self) -> None:
        n = len(self._items)
        keep = np.sort(np.argsort(-self._scores[:n], kind="stable")[: n // 2])
        self._items = [self._items[i] for i in keep]
        kept = self._scores[keep].copy()
        self._scores[:] = 0.0
        self._scores[: len(keep)] = kept
        self._index = {item: i for i, item in enumerate(self._items)}
        self._best = None

    def forget_item(self, item_id: str) -> None:
        idx = self._index.get(item_id)
        if idx is not None:
            self._scores[idx] = 0.0
            self._top = None
            self._best = None

    def score(self, item_id: str) -> float:
        """Decayed count of ``item_id`` as of the newest event seen."""
        idx = self._index.get(item_id)
        if idx is None or self._t0 is None:
            return 0.0
        return float(self._scores[idx] * decay_factor(self._t0, self._now, self.half_life))

    def in_top(self, item_id: str, k: int) -> bool:
        """Whether ``item_id`` is among the ``k`` highest decayed counts (ties count for it)."""
        idx = self._index.get(item_id)
        if idx is None or k <= 0:
            return False
        score = float(self._scores[idx])
        if score <= 0:
            return False
        best = self._best if self._best_k == k else None
        if best is None:
            scores = self._scores[: len(self._items)]
            rows = top_rows(scores, k)
            best = self._best = {int(r): float(scores[r]) for r in rows if scores[r] > 0}
            self._best_k, self._best_low = k, min(best.values(), default=0.0)
        # fewer than k items ahead <=> at least the k-th best count (the lowest of a top k)
        return len(best) < k or score >= self._best_low

    def _ranked(self, n: int) -> list[int]:
        if self._top is None or len(self._top) < min(n, len(self._items)):
            scores = self._scores[: len(self._items)]
            order = top_rows(scores, max(n, 256), ties="partition")
            self._top = [int(i) for i in order if scores[i] > 0]
        return self._top

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        if k <= 0:
            return []
        ranked = self._ranked(k + len(exclude))
        scale = decay_factor(self._t0 or 0.0, self._now, self.half_life)
        out: list[Candidate] = []
        for idx in ranked:
            item = self._items[idx]
            if item in exclude:
                continue
            out.append(Candidate(item, float(self._scores[idx] * scale), [self.name]))
            if len(out) >= k:
                break
        return out

    def trending(self, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` items with the highest decayed counts now, with those counts."""
        return [(c.item_id, c.score) for c in self.recommend(UserState(""), k=n)]
