"""Incremental item-to-item collaborative filtering from co-occurrence in users' histories.

When a user touches item ``i``, every item ``j`` among their last ``window`` items gets a
co-occurrence ``co(i, j)`` (both directions), weighted by how close ``j`` is to ``i`` in the
history. The similarity of two items is an asymmetric cosine ``co / (n_i ** alpha *
n_j ** (1 - alpha))`` over the items' interaction counts ``n`` (``alpha=0.5``: plain cosine),
damped by a shrinkage term for pairs seen only a few times. Each item keeps at most
``2 * max_neighbors`` neighbours (the weakest are pruned back to ``max_neighbors``), so memory
grows with the catalogue, never with its square. With ``half_life`` set, counts decay with the
forward-decay trick (see :mod:`models.popularity`), which leaves similarities unchanged unless
the balance of evidence changes.

>>> from models.base import UserState
>>> cf = ItemCooccurrence()
>>> for uid, items in [("u1", "abc"), ("u2", "abd"), ("u3", "ab")]:
...     user = UserState(uid)
...     for item in items:
...         cf.learn_one(user, item, ts=0.0)
...         user.observe(item, ts=0.0)
>>> [item for item, _ in cf.similar_items("a", k=1)]
['b']
>>> bob = UserState("bob")
>>> bob.observe("a", ts=0.0)
>>> top = cf.recommend(bob, k=3, exclude=bob.seen)
>>> [(c.item_id, c.because) for c in top][0]
('b', ['a'])
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection

from models.base import Candidate, Recommender, UserState

__all__ = ["ItemCooccurrence"]

_MAX_WEIGHT = 10.0  # one event never counts more than this, whatever the caller passes


class ItemCooccurrence(Recommender):
    """Item-kNN over co-occurrence in recent histories, learned one event at a time.

    Parameters:
        window: how many of the user's most recent items co-occur with a new one.
        window_decay: co-occurrence weight ``window_decay ** p`` for the item ``p`` places back.
        max_neighbors: neighbours kept per item (pruned when a list grows past twice this).
        alpha: asymmetry of the cosine; below 0.5 favours popular neighbours.
        shrinkage: pairs are damped by ``co / (co + shrinkage)`` (0 turns it off).
        history: how many of the user's most recent items are used to recommend.
        history_decay: weight ``history_decay ** p`` of the user's item ``p`` places back.
        half_life: seconds after which evidence counts half (``None``: no decay).
    """

    name = "cf"

    def __init__(
        self,
        window: int = 50,
        window_decay: float = 0.95,
        max_neighbors: int = 100,
        alpha: float = 0.5,
        shrinkage: float = 0.0,
        history: int = 30,
        history_decay: float = 0.9,
        half_life: float | None = None,
    ) -> None:
        if window < 1 or history < 1 or max_neighbors < 1:
            raise ValueError("window, history and max_neighbors must be >= 1")
        if not (0 < window_decay <= 1 and 0 < history_decay <= 1 and 0 <= alpha <= 1):
            raise ValueError("decays must be in (0, 1] and alpha in [0, 1]")
        if shrinkage < 0 or (half_life is not None and not half_life > 0):
            raise ValueError("shrinkage must be >= 0 and half_life > 0 or None")
        self.window = window
        self.window_decay = window_decay
        self.max_neighbors = max_neighbors
        self.alpha = alpha
        self.shrinkage = shrinkage
        self.history = history
        self.history_decay = history_decay
        self.half_life = half_life
        self._n: dict[str, float] = {}
        self._inv: dict[str, float] = {}  # 1 / n ** (1 - alpha), kept in step with _n
        self._co: dict[str, dict[str, float]] = {}
        self._t0: float | None = None
        self._scale = 1.0  # forward-decay boost of the newest event

    def __len__(self) -> int:
        return len(self._n)

    def _boost(self, ts: float) -> float:
        if self.half_life is None:
            return 1.0
        if self._t0 is None:
            self._t0 = ts
        exponent = (ts - self._t0) / self.half_life
        if exponent > 60:  # rescale everything before floats overflow; ratios are unchanged
            factor = 2.0 ** (-exponent)
            self._n = {i: v * factor for i, v in self._n.items()}
            self._inv = {i: v ** (self.alpha - 1.0) for i, v in self._n.items()}
            for row in self._co.values():
                for j in row:
                    row[j] *= factor
            self._t0, exponent = ts, 0.0
        self._scale = max(self._scale, 2.0**exponent)
        return float(2.0**exponent)

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        if not (math.isfinite(weight) and weight > 0 and math.isfinite(ts)):
            return  # dislikes and garbage carry no co-occurrence evidence
        w = min(weight, _MAX_WEIGHT) * self._boost(ts)
        n_i = self._n[item_id] = self._n.get(item_id, 0.0) + w
        self._inv[item_id] = n_i ** (self.alpha - 1.0)
        row = self._co.setdefault(item_id, {})
        pos_w = w
        seen = 0
        for other in reversed(user.recent):
            if other == item_id:
                continue
            if seen >= self.window:
                break
            row[other] = row.get(other, 0.0) + pos_w
            back = self._co.setdefault(other, {})
            back[item_id] = back.get(item_id, 0.0) + pos_w
            if len(back) > 2 * self.max_neighbors:
                self._prune(other)
            pos_w *= self.window_decay
            seen += 1
        if len(row) > 2 * self.max_neighbors:
            self._prune(item_id)

    def _sim(self, co: float, n_i: float, n_j: float) -> float:
        sim = co / (n_i**self.alpha * n_j ** (1.0 - self.alpha))
        if self.shrinkage:
            sim *= co / (co + self.shrinkage * self._scale)
        return sim

    def _neighbors(self, item_id: str) -> list[tuple[str, float]]:
        n_i = self._n.get(item_id)
        row = self._co.get(item_id)
        if not n_i or not row:
            return []
        n = self._n
        return [(j, self._sim(co, n_i, n[j])) for j, co in row.items() if n.get(j)]

    def _prune(self, item_id: str) -> None:
        best = heapq.nlargest(self.max_neighbors, self._neighbors(item_id), key=lambda p: p[1])
        row = self._co[item_id]
        self._co[item_id] = {j: row[j] for j, _ in best}

    def similarity(self, i: str, j: str) -> float:
        """Similarity of ``j`` as a neighbour of ``i`` (0 when not a kept neighbour)."""
        co = self._co.get(i, {}).get(j)
        if not co or not self._n.get(i) or not self._n.get(j):
            return 0.0
        return self._sim(co, self._n[i], self._n[j])

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` kept neighbours of ``item_id`` most similar to it, best first."""
        pairs = self._neighbors(item_id)
        return heapq.nsmallest(k, pairs, key=lambda p: (-p[1], p[0]))

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        if k <= 0:
            return []
        scores: dict[str, float] = {}
        weights: dict[str, float] = {}
        inv, shrink = self._inv, self.shrinkage * self._scale
        w = 1.0
        for item in reversed(user.recent[-self.history :]):
            weights[item] = w
            row, n_i = self._co.get(item), self._n.get(item)
            if row and n_i:
                a = w / n_i**self.alpha
                for j, co in row.items():  # the hot loop: inlined _sim
                    inv_j = inv.get(j)
                    if inv_j:
                        sim = a * co * inv_j
                        scores[j] = scores.get(j, 0.0) + (sim * co / (co + shrink) if shrink else sim)
            w *= self.history_decay
        ranked = heapq.nsmallest(
            k,
            ((j, s) for j, s in scores.items() if j not in exclude and s > 0 and math.isfinite(s)),
            key=lambda p: (-p[1], p[0]),
        )
        out: list[Candidate] = []
        for j, s in ranked:
            parts = [(hw * self.similarity(i, j), i) for i, hw in weights.items()]
            because = [i for p, i in sorted(parts, key=lambda p: (-p[0], p[1]))[:2] if p > 0]
            out.append(Candidate(j, s, [self.name], because))
        return out

    def forget_item(self, item_id: str) -> None:
        self._n.pop(item_id, None)
        self._inv.pop(item_id, None)
        for j in self._co.pop(item_id, {}):
            self._co.get(j, {}).pop(item_id, None)
        # rows that still name the item (pruned one way only) skip it: it has no count now
