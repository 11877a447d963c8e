"""Cohort popularity: what users at the same stage pick, with a memory span learned per cohort.

>>> from models.base import UserState
>>> pop = CohortPopularity(stages=(1,), half_lives=(3600.0,))
>>> for uid, items in [("u1", "ab"), ("u2", "ac"), ("u3", "db")]:
...     user = UserState(uid)
...     for item in items:
...         pop.learn_one(user, item, ts=0.0)
...         user.observe(item, ts=0.0)
>>> [c.item_id for c in pop.recommend(UserState("new"), k=2)]  # first picks: a, a, d
['a', 'd']
>>> pop.cohort(0), pop.cohort(7), pop.half_life(0)
(0, 1, 3600.0)
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.common import MAX_WEIGHT, decay_factor, positive_evidence
from models.popularity import DecayedPopularity
from models.ranking import Proposals, RankBatch

__all__ = ["CohortPopularity"]


class CohortPopularity(Recommender):
    """What users at the same stage pick: decayed popularity per cohort, memory span learned.

    Users are grouped by how many interactions they had when they acted (``stages`` are the
    cohort boundaries, the switching thresholds by default): what a user picks first (an
    onboarding page, a landing list) is not what the whole audience is picking now, and a
    newcomer is best served by what other newcomers chose. Each cohort keeps a
    :class:`~models.popularity.DecayedPopularity` per candidate ``half_lives``; before each
    event is learned, every candidate is credited if the item was in its top ``k`` for that
    cohort, and a cohort's lists come from the candidate with the best exponentially weighted
    hit rate (``rate`` is the weight of the newest event), so how long the cohort's taste lasts
    is measured on the stream, not guessed.

    Parameters:
        stages: cohort boundaries (interaction counts, increasing, >= 1).
        half_lives: candidate half-lives in seconds, one decayed popularity each per cohort.
        k: the list length a candidate is credited for.
        rate: weight of the newest event in a candidate's hit rate.
        capacity: most items each decayed popularity tracks.
    """

    name = "cohort"
    explains = False  # popular is not a reason of the user's

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
        self.capacity = capacity
        self._pops = [
            [DecayedPopularity(half_life=h, capacity=capacity) for h in self.half_lives]
            for _ in range(len(self.stages) + 1)
        ]
        self._credit = np.zeros((len(self.stages) + 1, len(self.half_lives)))

    def cohort(self, interactions: int) -> int:
        """Index of the cohort of a user with ``interactions`` interactions."""
        return bisect_right(self.stages, interactions)  # the stages reached (increasing)

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
        if not positive_evidence(weight, ts):
            return
        c = self.cohort(user.interactions)
        credit, rate, k, w = self._credit[c], self.rate, self.k, min(weight, MAX_WEIGHT)
        for j, pop in enumerate(self._pops[c]):
            was = float(credit[j])  # Python floats: the same sums as numpy's, faster
            credit[j] = was + rate * (pop.in_top(item_id, k) - was)
            pop._add(item_id, ts, w)  # what its learn_one counts, checked once

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        c = self.cohort(user.interactions)
        best = self._pops[c][int(np.argmax(self._credit[c]))]
        return [
            Candidate(x.item_id, x.score, [self.name]) for x in best.recommend(user, k, exclude)
        ]

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: each cohort's ranking is read
        once and cut per user after the user's exclusions."""
        groups: dict[int, list[int]] = {}
        for b, user in enumerate(batch.users):
            groups.setdefault(self.cohort(user.interactions), []).append(b)
        if n <= 0:
            return Proposals.empty()
        owners, items, scores = [], [], []
        for c, members in groups.items():
            best = self._pops[c][int(np.argmax(self._credit[c]))]
            ranked = np.asarray(
                best._ranked(n + max(len(batch.excludes[b]) for b in members)), dtype=np.int64
            )
            if not len(ranked):
                continue
            ids = batch.vocab.rows(best._items)[ranked]
            value = best._scores[ranked] * decay_factor(best._t0 or 0.0, best._now, best.half_life)
            owner = np.repeat(np.asarray(members, dtype=np.int64), len(ranked))
            at = np.tile(np.arange(len(ranked)), len(members))
            ok = ~_excluded(batch, members, ids).ravel()
            kept = np.cumsum(ok.reshape(len(members), -1), axis=1).ravel()
            take = np.flatnonzero(ok & (kept <= n))
            owners.append(owner[take])
            items.append(ids[at[take]])
            scores.append(value[at[take]])
        if not owners:
            return Proposals.empty()
        return Proposals(np.concatenate(owners), np.concatenate(items), np.concatenate(scores))

    def forget_item(self, item_id: str) -> None:
        for cohort in self._pops:
            for pop in cohort:
                pop.forget_item(item_id)


def _excluded(batch: RankBatch, members: list[int], ids: np.ndarray) -> np.ndarray:
    """Whether ``members[m]`` must not be shown item ``ids[r]``, at ``[m, r]`` (``ids``
    distinct): what :meth:`RankBatch.allowed` says, from the batch's excluded pairs."""
    owner, items = batch.excluded_pairs()  # first: it may add the excluded items to the vocab
    local = np.full(len(batch), -1, dtype=np.int64)
    local[members] = np.arange(len(members))
    place = np.full(len(batch.vocab), -1, dtype=np.int64)
    place[ids] = np.arange(len(ids))
    m, r = local[owner], place[items]
    hit = (m >= 0) & (r >= 0)
    out = np.zeros((len(members), len(ids)), dtype=bool)
    out[m[hit], r[hit]] = True
    return out
