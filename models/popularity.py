"""Time-decayed popularity: what is trending now, in bounded memory.

Each interaction adds ``weight * 2 ** ((ts - t0) / half_life)`` to its item's score, so
comparing scores compares exponentially decayed counts without touching every item on each
event (the forward-decay trick). Scores are renormalised when the exponent grows large. At most
``capacity`` items are tracked: when full, the weaker half is dropped (a heavy item is never
evicted by a burst of new, rare ones), so memory stays bounded for catalogues of millions.

>>> pop = DecayedPopularity(half_life=3600.0)
>>> from models.base import UserState
>>> u = UserState("u1")
>>> for item in ["a", "b", "b", "c", "b", "c"]:
...     pop.learn_one(u, item, ts=0.0)
>>> [c.item_id for c in pop.recommend(u, k=2)]
['b', 'c']
>>> [c.item_id for c in pop.recommend(u, k=2, exclude={"b"})]
['c', 'a']
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from models.base import Candidate, Recommender, UserState

__all__ = ["CohortPopularity", "DecayedPopularity"]


class DecayedPopularity(Recommender):
    """Exponentially decayed interaction counts per item, top-N in O(n) with numpy.

    Parameters:
        half_life: seconds after which an interaction counts half as much.
        capacity: most items tracked at once; the weaker half is evicted when it is reached.
    """

    name = "popularity"

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

    def _boost(self, ts: float) -> float:
        if self._t0 is None:
            self._t0 = ts
        exponent = (ts - self._t0) / self.half_life
        if exponent > 60:  # rescale before floats overflow; relative order is unchanged
            self._scores[: len(self._items)] *= 2.0 ** (-exponent)
            self._t0 = ts
            exponent = 0.0
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
        if not (weight > 0 and math.isfinite(weight) and math.isfinite(ts)):
            return
        self._now = max(self._now, ts)
        idx = self._index.get(item_id)
        if idx is None:
            if len(self._items) >= self.capacity:
                self._evict()
            idx = len(self._items)
            if idx >= len(self._scores):
                self._scores = np.concatenate([self._scores, np.zeros_like(self._scores)])
            self._index[item_id] = idx
            self._items.append(item_id)
        self._scores[idx] += weight * self._boost(ts)
        self._top = None

    def _evict(self) -> None:
        n = len(self._items)
        keep = np.sort(np.argsort(-self._scores[:n], kind="stable")[: n // 2])
        self._items = [self._items[i] for i in keep]
        kept = self._scores[keep].copy()
        self._scores[:] = 0.0
        self._scores[: len(keep)] = kept
        self._index = {item: i for i, item in enumerate(self._items)}

    def forget_item(self, item_id: str) -> None:
        idx = self._index.get(item_id)
        if idx is not None:
            self._scores[idx] = 0.0
            self._top = None

    def score(self, item_id: str) -> float:
        """Decayed count of ``item_id`` as of the newest event seen."""
        idx = self._index.get(item_id)
        if idx is None or self._t0 is None:
            return 0.0
        return float(self._scores[idx] * 2.0 ** (-(self._now - self._t0) / self.half_life))

    def in_top(self, item_id: str, k: int) -> bool:
        """Whether ``item_id`` is among the ``k`` highest decayed counts (ties count for it)."""
        idx = self._index.get(item_id)
        if idx is None or self._scores[idx] <= 0:
            return False
        return int(np.count_nonzero(self._scores[: len(self._items)] > self._scores[idx])) < k

    def _ranked(self, n: int) -> list[int]:
        if self._top is None or len(self._top) < min(n, len(self._items)):
            scores = self._scores[: len(self._items)]
            m = min(max(n, 256), len(scores))
            part = np.argpartition(-scores, m - 1)[:m] if m < len(scores) else np.arange(m)
            order = part[np.argsort(-scores[part], kind="stable")]
            self._top = [int(i) for i in order if scores[i] > 0]
        return self._top

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        ranked = self._ranked(k + len(exclude))
        scale = 2.0 ** (-(self._now - (self._t0 or 0.0)) / self.half_life)
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


class CohortPopularity(Recommender):
    """What users at the same stage pick: decayed popularity per cohort, memory span learned.

    Users are grouped by how many interactions they had when they acted (``stages`` are the
    cohort boundaries, the switching thresholds by default): what a user picks first (an
    onboarding page, a landing list) is not what the whole audience is picking now, and a
    newcomer is best served by what other newcomers chose. Each cohort keeps a
    :class:`DecayedPopularity` per candidate ``half_lives``; before each event is learned,
    every candidate is credited if the item was in its top ``k`` for that cohort, and a
    cohort's lists come from the candidate with the best exponentially weighted hit rate
    (``rate`` is the weight of the newest event), so how long the cohort's taste lasts is
    measured on the stream, not guessed.

    >>> from models.base import UserState
    >>> pop = CohortPopularity(stages=(1,), half_lives=(3600.0,))
    >>> for uid, items in [("u1", "ab"), ("u2", "ac"), ("u3", "db")]:
    ...     user = UserState(uid)
    ...     for item in items:
    ...         pop.learn_one(user, item, ts=0.0)
    ...         user.observe(item, ts=0.0)
    >>> [c.item_id for c in pop.recommend(UserState("new"), k=2)]  # first picks: a, a, d
    ['a', 'd']
    """

    name = "cohort"

    def __init__(
        self,
        stages: tuple[int, ...] = (1, 5, 20),
        half_lives: tuple[float, ...] = (24 * 3600.0, 7 * 24 * 3600.0, 30 * 24 * 3600.0),
        k: int = 10,
        rate: float = 0.01,
        capacity: int = 200_000,
    ) -> None:
        if list(stages) != sorted(set(stages)) or (stages and stages[0] < 1):
            raise ValueError("stages must be increasing interaction counts >= 1")
        if not half_lives or not all(h > 0 for h in half_lives):
            raise ValueError("need at least one half-life, each > 0")
        if k < 1 or not 0 < rate <= 1:
            raise ValueError("need k >= 1 and 0 < rate <= 1")
        self.stages = tuple(stages)
        self.half_lives = tuple(half_lives)
        self.k = k
        self.rate = rate
        self._pops = [
            [DecayedPopularity(half_life=h, capacity=capacity) for h in self.half_lives]
            for _ in range(len(self.stages) + 1)
        ]
        self._credit = np.zeros((len(self.stages) + 1, len(self.half_lives)))

    def cohort(self, interactions: int) -> int:
        """Index of the cohort of a user with ``interactions`` interactions."""
        return sum(interactions >= s for s in self.stages)

    def half_life(self, interactions: int) -> float:
        """The half-life serving users with ``interactions`` interactions now."""
        return self.half_lives[int(np.argmax(self._credit[self.cohort(interactions)]))]

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        if not (weight > 0 and math.isfinite(weight) and math.isfinite(ts)):
            return
        c = self.cohort(user.interactions)
        credit = self._credit[c]
        for j, pop in enumerate(self._pops[c]):
            credit[j] += self.rate * (pop.in_top(item_id, self.k) - credit[j])
            pop.learn_one(user, item_id, ts=ts, weight=weight)

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        c = self.cohort(user.interactions)
        best = self._pops[c][int(np.argmax(self._credit[c]))]
        return [
            Candidate(x.item_id, x.score, [self.name]) for x in best.recommend(user, k, exclude)
        ]

    def forget_item(self, item_id: str) -> None:
        for cohort in self._pops:
            for pop in cohort:
                pop.forget_item(item_id)
