"""Explicit-rating matrix factorisation: an average of river ``BiasedMF`` models.

:class:`RatingMF` learns only rating events and predicts a rating without creating state for
unknown users or items (:meth:`RatingMF.predict_rating`, what the evaluation's MAE reads
through :meth:`models.hybrid.HybridRecommender.predict_rating`).

>>> from models.base import UserState
>>> model = RatingMF(seed=1)
>>> alice, bob = UserState("alice"), UserState("bob")
>>> for _ in range(20):
...     for user, item, stars in [(alice, "a", 5), (alice, "b", 1), (bob, "a", 5)]:
...         model.learn_one(user, item, ts=0.0, value=stars)
>>> model.predict_rating("alice", "a") > 4 > 2 > model.predict_rating("alice", "b")
True
>>> model.predict_rating("bob", "a") > model.predict_rating("bob", "b")
True
>>> model.predict_rating("carol", "zzz") == model.predict_rating("carol", "yyy")
True
>>> "carol" in model.models[0].u_latents
False
>>> [c.item_id for c in model.recommend(bob, k=2)]
['a', 'b']
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import numpy as np
from river import optim, reco

from models.base import Candidate, Recommender, UserState
from models.common import add_row, drop_row, grown, top_servable

__all__ = ["RatingMF"]


class RatingMF(Recommender):
    """Explicit-rating matrix factorisation: an average of ``n_models`` river ``BiasedMF``s.

    Only events with a finite numeric ``value`` (a rating) are learned, clipped to
    ``[rating_min, rating_max]``. :meth:`predict_rating` is read-only: unknown users or items
    fall back to the global mean and the known biases. ``recommend`` ranks the catalogue by
    predicted rating in bulk from item factors mirrored into numpy.

    Parameters:
        n_factors: latent dimensions.
        bias_lr: SGD learning rate of the user and item biases.
        latent_lr: SGD learning rate of the latent factors.
        l2_bias: L2 penalty on biases.
        l2_latent: L2 penalty on latent factors.
        init_sigma: standard deviation of new latent factors.
        n_models: models averaged (each seeded ``seed + m``); more is steadier, and slower.
            Defaults (20 factors, latent lr 0.07, 3 models) give prequential MAE 0.7443,
            0.7437 and 0.7439 on MovieLens-100K for seeds 42, 0 and 7 (docs/EVALUATION.md).
        rating_min: lowest rating.
        rating_max: highest rating.
        clip_gradient: bound on the loss gradient of one event.
        seed: seed of the first model's latent initialiser.
        max_users: users whose bias and factors are kept (the least recently rated let go
            first, then predicted as users never seen), so a worker's memory does not grow
            with every user who ever rated.
    """

    name = "rating"
    explains = False  # a predicted rating names no item of the user's
    #: What a model pickled before the cap existed uses (the constructor's default).
    max_users: int = 100_000

    def __init__(
        self,
        n_factors: int = 20,
        bias_lr: float = 0.035,
        latent_lr: float = 0.07,
        l2_bias: float = 0.0,
        l2_latent: float = 0.0,
        init_sigma: float = 0.05,
        n_models: int = 3,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        clip_gradient: float = 10.0,
        seed: int = 0,
        max_users: int = max_users,
    ) -> None:
        if n_factors < 1 or n_models < 1 or rating_max <= rating_min or clip_gradient <= 0:
            raise ValueError("need n_factors, n_models >= 1, rating_max > rating_min")
        if max_users < 1:
            raise ValueError("need max_users >= 1")
        self.n_factors = n_factors
        self.bias_lr = bias_lr
        self.latent_lr = latent_lr
        self.l2_bias = l2_bias
        self.l2_latent = l2_latent
        self.init_sigma = init_sigma
        self.n_models = n_models
        self.rating_min = rating_min
        self.rating_max = rating_max
        self.clip_gradient = clip_gradient
        self.seed = seed
        self.max_users = max_users
        self.models = [
            reco.BiasedMF(
                n_factors=n_factors,
                bias_optimizer=optim.SGD(bias_lr),
                latent_optimizer=optim.SGD(latent_lr),
                l2_bias=l2_bias,
                l2_latent=l2_latent,
                latent_initializer=optim.initializers.Normal(
                    mu=0.0, sigma=init_sigma, seed=seed + m
                ),
                clip_gradient=clip_gradient,
                seed=seed + m,
            )
            for m in range(n_models)
        ]
        self._row: dict[str, int] = {}
        self._row_items: list[str | None] = []
        self._V = np.zeros((n_models, 256, n_factors))
        self._b = np.zeros((n_models, 256))
        self._alive = np.zeros(256, dtype=bool)
        self._users: OrderedDict[str, None] = OrderedDict()  # least recently rated first

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_users" not in state:  # a checkpoint from before the cap: its users, first seen first
            state["_users"] = OrderedDict.fromkeys(state["models"][0].u_latents)
        self.__dict__.update(state)

    def _rated(self, user_id: str) -> None:
        """``user_id`` is the most recently rated; the least recent beyond ``max_users`` go."""
        users = self._users
        if user_id in users:
            users.move_to_end(user_id)
        else:
            users[user_id] = None
        while len(users) > self.max_users:
            gone, _ = users.popitem(last=False)
            for mf in self.models:
                mf.u_latents.pop(gone, None)
                mf.u_biases.pop(gone, None)

    def _clip(self, y: float) -> float:
        return min(self.rating_max, max(self.rating_min, y))

    def _mirror(self, item_id: str) -> None:
        row = self._row.get(item_id)
        if row is None:
            row = add_row(self._row, self._row_items, item_id)
            self._V, self._b = grown(self._V, row, axis=1), grown(self._b, row, axis=1)
            self._alive = grown(self._alive, row)
            self._alive[row] = True
        for m, mf in enumerate(self.models):
            self._V[m, row] = mf.i_latents[item_id]
            self._b[m, row] = mf.i_biases[item_id]

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        if value is None or isinstance(value, bool) or not math.isfinite(value):
            return
        y = self._clip(float(value))
        for mf in self.models:
            mf.learn_one(user.user_id, item_id, y)
        self._rated(user.user_id)
        self._mirror(item_id)

    def predict_rating(self, user_id: str, item_id: str) -> float:
        """Predicted rating in ``[rating_min, rating_max]``; creates no state."""
        preds = []
        for mf in self.models:
            if mf.global_mean.n == 0:
                return (self.rating_min + self.rating_max) / 2.0
            y = mf.global_mean.get() + mf.u_biases.get(user_id, 0.0) + mf.i_biases.get(item_id, 0.0)
            pu, qi = mf.u_latents.get(user_id), mf.i_latents.get(item_id)
            if pu is not None and qi is not None:
                y += float(np.dot(pu, qi))
            preds.append(y)
        y = sum(preds) / len(preds)
        return self._clip(y) if math.isfinite(y) else self._clip(self.models[0].global_mean.get())

    def forget_item(self, item_id: str) -> None:
        if drop_row(self._row, self._row_items, self._alive, item_id) is not None:
            for mf in self.models:
                mf.i_latents.pop(item_id, None)
                mf.i_biases.pop(item_id, None)

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        """Top ``k`` items by predicted rating (the score; positive if ``rating_min > 0``)."""
        n = len(self._row_items)
        if k <= 0 or n == 0 or self.models[0].global_mean.n == 0:
            return []
        pred = np.zeros(n)
        for m, mf in enumerate(self.models):
            pred += mf.global_mean.get() + mf.u_biases.get(user.user_id, 0.0) + self._b[m, :n]
            pu = mf.u_latents.get(user.user_id)
            if pu is not None:
                pred += self._V[m, :n] @ pu
        pred = np.clip(pred / len(self.models), self.rating_min, self.rating_max)
        return [
            Candidate(str(self._row_items[r]), float(pred[r]), [self.name])
            for r in top_servable(pred, k, self._alive, self._row, exclude)
        ]
