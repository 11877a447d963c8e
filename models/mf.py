"""Matrix factorisation: implicit feedback with sampled negatives, and explicit ratings (river).

:class:`ImplicitMF` learns ``sigmoid(u . v_i + b_i)`` = "user u interacts with item i" by SGD in
numpy: every positive event is a target 1 and ``n_negatives`` items drawn from a bounded pool of
recent positives (so popular items are drawn more often) are targets 0; a dislike is a target 0.
Item factors live in one numpy matrix (grown by doubling), so a user's candidates are ranked in
bulk with one matrix-vector product and ``argpartition``.

:class:`RatingMF` wraps :class:`river.reco.BiasedMF` for explicit ratings and predicts a rating
without creating state for unknown users or items.

>>> from models.base import UserState
>>> mf = ImplicitMF(n_factors=4, seed=1)
>>> users = {u: UserState(u) for u in ("a1", "a2", "b1", "b2")}
>>> for _ in range(60):
...     for u, items in (("a1", "xy"), ("a2", "xyz"), ("b1", "pq"), ("b2", "pqr")):
...         for item in items:
...             mf.learn_one(users[u], item, ts=0.0)
>>> [c.item_id for c in mf.recommend(users["a1"], k=1, exclude={"x", "y"})]
['z']
>>> [c.item_id for c in mf.recommend(users["b1"], k=1, exclude={"p", "q"})]
['r']
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection

import numpy as np

from models.base import Candidate, Recommender, UserState

__all__ = ["ImplicitMF", "RatingMF"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


class ImplicitMF(Recommender):
    """Online implicit-feedback matrix factorisation with sampled negatives (numpy SGD).

    Parameters:
        n_factors: latent dimensions.
        lr: SGD learning rate.
        l2: L2 penalty on factors and item biases.
        n_negatives: sampled negatives (target 0) per positive event.
        pool_size: recent positive events kept to draw negatives from (popularity-weighted).
        max_users: user vectors kept (least recently active evicted first).
        init_scale: standard deviation of new factors.
        max_weight: event weights are clipped to ``[-max_weight, max_weight]``.
        seed: seed of the initialiser and the negative sampler.
    """

    name = "mf"

    def __init__(
        self,
        n_factors: int = 32,
        lr: float = 0.05,
        l2: float = 0.01,
        n_negatives: int = 4,
        pool_size: int = 10_000,
        max_users: int = 100_000,
        init_scale: float = 0.1,
        max_weight: float = 3.0,
        seed: int = 0,
    ) -> None:
        if n_factors < 1 or lr <= 0 or l2 < 0 or n_negatives < 0 or pool_size < 1:
            raise ValueError("need n_factors >= 1, lr > 0, l2 >= 0, n_negatives >= 0")
        if max_users < 1 or init_scale <= 0 or max_weight <= 0:
            raise ValueError("need max_users >= 1, init_scale > 0, max_weight > 0")
        self.n_factors = n_factors
        self.lr = lr
        self.l2 = l2
        self.n_negatives = n_negatives
        self.pool_size = pool_size
        self.max_users = max_users
        self.init_scale = init_scale
        self.max_weight = max_weight
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._users: OrderedDict[str, np.ndarray] = OrderedDict()
        self._row: dict[str, int] = {}
        self._row_items: list[str | None] = []
        self._V = np.zeros((256, n_factors))
        self._b = np.zeros(256)
        self._alive = np.zeros(256, dtype=bool)
        self._pool = np.zeros(pool_size, dtype=np.int64)
        self._pool_n = 0  # positives pushed so far (the pool holds the last pool_size)
        self._dead = 0

    def __len__(self) -> int:
        return len(self._row)

    def _item_row(self, item_id: str) -> int:
        row = self._row.get(item_id)
        if row is None:
            row = len(self._row_items)
            if row >= len(self._b):
                grow = len(self._b)
                self._V = np.vstack([self._V, np.zeros((grow, self.n_factors))])
                self._b = np.concatenate([self._b, np.zeros(grow)])
                self._alive = np.concatenate([self._alive, np.zeros(grow, dtype=bool)])
            self._V[row] = self._rng.normal(0.0, self.init_scale, self.n_factors)
            self._b[row] = 0.0
            self._alive[row] = True
            self._row[item_id] = row
            self._row_items.append(item_id)
        return row

    def _user_vec(self, user_id: str) -> np.ndarray:
        vec = self._users.get(user_id)
        if vec is None:
            vec = self._rng.normal(0.0, self.init_scale, self.n_factors)
            self._users[user_id] = vec
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user_id)
        return vec

    def _negatives(self, positive: int) -> np.ndarray:
        held = min(self._pool_n, self.pool_size)
        if held == 0 or self.n_negatives == 0:
            return np.zeros(0, dtype=np.int64)
        rows = self._pool[self._rng.integers(0, held, self.n_negatives)]
        return rows[(rows != positive) & self._alive[rows]]

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        if not math.isfinite(weight) or weight == 0:
            return
        weight = max(-self.max_weight, min(self.max_weight, weight))
        row = self._item_row(item_id)
        u = self._user_vec(user.user_id)
        if weight > 0:
            rows = np.concatenate([[row], self._negatives(row)])
            targets = np.zeros(len(rows))
            targets[0] = 1.0
            conf = np.ones(len(rows))
            conf[0] = weight
        else:
            rows, targets, conf = np.array([row]), np.zeros(1), np.array([-weight])
        V = self._V[rows]
        g = conf * (_sigmoid(V @ u + self._b[rows]) - targets)
        new_u = u - self.lr * (g @ V + self.l2 * u)
        new_V = V - self.lr * (g[:, None] * u + self.l2 * V)
        new_b = self._b[rows] - self.lr * (g + self.l2 * self._b[rows])
        if not (np.isfinite(new_u).all() and np.isfinite(new_V).all()):
            return  # never let one event poison the factors
        u[:] = np.clip(new_u, -10.0, 10.0)
        self._V[rows] = np.clip(new_V, -10.0, 10.0)
        self._b[rows] = np.clip(new_b, -10.0, 10.0)
        if weight > 0:
            self._pool[self._pool_n % self.pool_size] = row
            self._pool_n += 1

    def forget_item(self, item_id: str) -> None:
        row = self._row.pop(item_id, None)
        if row is None:
            return
        self._alive[row] = False
        self._row_items[row] = None
        self._dead += 1
        if self._dead > max(1024, len(self._row)):
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: len(self._row_items)])
        remap = np.full(len(self._b), -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        size = max(256, 2 * len(keep))
        V, b = np.zeros((size, self.n_factors)), np.zeros(size)
        V[: len(keep)], b[: len(keep)] = self._V[keep], self._b[keep]
        self._V, self._b = V, b
        self._alive = np.zeros(size, dtype=bool)
        self._alive[: len(keep)] = True
        self._row_items = [self._row_items[r] for r in keep]
        self._row = {item: r for r, item in enumerate(self._row_items) if item is not None}
        held = min(self._pool_n, self.pool_size)
        pool = remap[self._pool[:held]]
        pool = pool[pool >= 0]
        self._pool = np.zeros(self.pool_size, dtype=np.int64)
        self._pool[: len(pool)] = pool
        self._pool_n = len(pool)
        self._dead = 0

    def user_vector(self, user: UserState) -> np.ndarray | None:
        """The user's factors; for a user the model does not hold (new, or evicted), the mean
        factors of their recent items it knows. Never creates state."""
        vec = self._users.get(user.user_id)
        if vec is not None:
            return vec
        rows = [self._row[i] for i in user.recent[-50:] if i in self._row]
        return self._V[rows].mean(axis=0) if rows else None

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        """Top ``k`` items by ``sigmoid(u . v + b)`` (a probability, so always positive);
        ``because`` names the user's recent item most similar to each candidate."""
        u = self.user_vector(user)
        n = len(self._row_items)
        if u is None or k <= 0 or n == 0:
            return []
        scores = self._V[:n] @ u + self._b[:n]
        scores[~self._alive[:n]] = -np.inf
        for item in exclude:
            row = self._row.get(item)
            if row is not None:
                scores[row] = -np.inf
        m = min(k, int(np.isfinite(scores).sum()))
        if m == 0:
            return []
        top = np.argpartition(-scores, m - 1)[:m] if m < n else np.arange(n)
        top = top[np.lexsort((top, -scores[top]))]
        recent = [i for i in user.recent[-20:] if i in self._row]
        sims = None
        if recent:
            sims = self._V[top] @ self._V[[self._row[i] for i in recent]].T
        out = []
        for j, r in enumerate(top):
            item = self._row_items[r]
            if item is None or not np.isfinite(scores[r]):
                continue
            because = [recent[int(np.argmax(sims[j]))]] if sims is not None else []
            out.append(Candidate(item, float(_sigmoid(scores[r])), [self.name], because))
        return out
