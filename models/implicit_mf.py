"""Implicit-feedback matrix factorisation with sampled negatives (numpy SGD).

:class:`ImplicitMF` scores ``u . v_i + b_i`` and learns by BPR-style SGD in numpy: for every
positive event, the item should outrank ``n_negatives`` items drawn uniformly from the known
catalogue (a dislike: be outranked by them), weighted by the event's weight. Uniform negatives
keep the popularity signal in the item biases; popularity-weighted negatives (drawn from recent
events) measured far worse on MovieLens-100K. The user vector is the user's own factors plus
the mean context vector of their last ``context`` items (recency, and a fold-in for new users).
Item factors live in one numpy matrix (grown by doubling), so a user's candidates are ranked in
bulk with one matrix-vector product and ``argpartition``.

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
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.common import add_row, drop_row, grown, live_rows, top_servable
from models.ranking import Proposals, RankBatch, bulk_rows, distinct, top_dense

if TYPE_CHECKING:
    from models.events import Event

__all__ = ["ImplicitMF"]


_BOUND = 10.0  # factors and biases are clipped to [-_BOUND, _BOUND]


def _steps(owners: Sequence[str], size: int) -> list[list[int]]:
    """Indices of the events in steps: each user's first events of the batch, then their
    second ones, ... (the batch's order within each round), cut into steps of ``size``.

    >>> _steps(["a", "a", "b", "a", "c"], 2)
    [[0, 2], [4], [1], [3]]
    """
    count: dict[str, int] = {}
    rounds: list[list[int]] = []
    for i, owner in enumerate(owners):
        r = count.get(owner, 0)
        count[owner] = r + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
    return [step[lo : lo + size] for step in rounds for lo in range(0, len(step), size)]


def _padded(lists: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
    """Rows of unequal length as one array, ``-1`` where a row has no entry."""
    width = max((len(r) for r in lists), default=0)
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for i, r in enumerate(lists):
        out[i, : len(r)] = r
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


class ImplicitMF(Recommender):
    """Online implicit-feedback matrix factorisation with sampled negatives (numpy SGD).

    Parameters:
        n_factors: latent dimensions.
        lr: SGD learning rate.
        l2: L2 penalty on factors and item biases.
        n_negatives: sampled negatives (target 0) per positive event.
        max_users: user vectors kept (least recently active evicted first).
        context: the user's last ``context`` items add the mean of their context vectors to the
            user vector (recency, and a fold-in for users the model does not hold); 0: plain MF.
        init_scale: standard deviation of new factors.
        max_weight: event weights are clipped to ``[-max_weight, max_weight]``.
        seed: seed of the initialiser and the negative sampler.
        max_batch: events of a batch (:meth:`learn_many`) learned in one vectorised SGD step,
            their gradients taken at the step's start; 1 learns one event at a time.
        retrieval_items: ranking a batch of users (:meth:`propose`) scores the whole catalogue
            up to this many items; beyond, the items with the largest biases (this many) and
            the items the hybrid's other sources proposed (the two-stage cut).
    """

    name = "mf"
    #: What a model pickled before minibatches existed does (its checkpoint lacks the attribute).
    max_batch: int = 1
    #: Scores its catalogue in bulk: the hybrid asks it after the other sources (their
    #: proposals are its pool, :func:`models.ranking.candidate_rows`).
    bulk = True
    #: What a model pickled before the cut existed uses.
    retrieval_items: int = 2000

    def __init__(
        self,
        n_factors: int = 32,
        lr: float = 0.1,
        l2: float = 0.001,
        n_negatives: int = 4,
        max_users: int = 100_000,
        context: int = 5,
        init_scale: float = 0.1,
        max_weight: float = 3.0,
        seed: int = 0,
        max_batch: int = 64,
        retrieval_items: int = 2000,
    ) -> None:
        if n_factors < 1 or lr <= 0 or l2 < 0 or n_negatives < 1 or max_batch < 1:
            raise ValueError(
                "need n_factors >= 1, lr > 0, l2 >= 0, n_negatives >= 1, max_batch >= 1"
            )
        if (
            max_users < 1
            or context < 0
            or init_scale <= 0
            or max_weight <= 0
            or retrieval_items < 1
        ):
            raise ValueError(
                "need max_users >= 1, init_scale > 0, max_weight > 0, retrieval_items >= 1"
            )
        self.n_factors = n_factors
        self.lr = lr
        self.l2 = l2
        self.n_negatives = n_negatives
        self.max_users = max_users
        self.context = context
        self.init_scale = init_scale
        self.max_weight = max_weight
        self.seed = seed
        self.max_batch = max_batch
        self.retrieval_items = retrieval_items
        self._rng = np.random.default_rng(seed)
        self._users: OrderedDict[str, np.ndarray] = OrderedDict()
        self._row: dict[str, int] = {}
        self._row_items: list[str | None] = []
        self._V = np.zeros((256, n_factors))  # item factors
        self._P = np.zeros((256, n_factors))  # item context factors (used when context > 0)
        self._b = np.zeros(256)
        self._alive = np.zeros(256, dtype=bool)
        self._dead = 0

    def __len__(self) -> int:
        return len(self._row)

    def _item_row(self, item_id: str) -> int:
        row = self._row.get(item_id)
        if row is None:
            row = add_row(self._row, self._row_items, item_id)
            self._V, self._P = grown(self._V, row), grown(self._P, row)
            self._b, self._alive = grown(self._b, row), grown(self._alive, row)
            self._V[row] = self._rng.normal(0.0, self.init_scale, self.n_factors)
            self._P[row] = self._rng.normal(0.0, self.init_scale, self.n_factors)
            self._b[row] = 0.0
            self._alive[row] = True
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
        rows = self._rng.integers(0, len(self._row_items), self.n_negatives)
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
        ctx = self._context_rows(user)
        row = self._item_row(item_id)
        u = self._user_vec(user.user_id)
        neg = self._negatives(row)
        if len(neg) == 0:
            return
        Pc = self._P[ctx]
        full = u + Pc.mean(axis=0) if ctx else u
        # BPR: the touched item should outrank each negative (be outranked, for a dislike).
        sign = 1.0 if weight > 0 else -1.0
        vi, Vj, bi, bj = self._V[row], self._V[neg], self._b[row], self._b[neg]
        x = sign * ((vi - Vj) @ full + bi - bj)
        g = -abs(weight) * sign * _sigmoid(-x)  # d(-log sigmoid(x)) / d(score_i - score_j)
        g_user = g @ (vi - Vj)
        new_u = u - self.lr * (g_user + self.l2 * u)
        new_vi = vi - self.lr * (g.sum() * full + self.l2 * vi)
        new_Vj = Vj - self.lr * (-g[:, None] * full + self.l2 * Vj)
        new_Pc = Pc - self.lr * (g_user / max(1, len(ctx)) + self.l2 * Pc)
        new_bi = bi - self.lr * (g.sum() + self.l2 * bi)
        new_bj = bj - self.lr * (-g + self.l2 * bj)
        if not (np.isfinite(new_u).all() and np.isfinite(new_vi).all()):
            return  # never let one event poison the factors
        u[:] = np.clip(new_u, -_BOUND, _BOUND)
        if ctx:
            self._P[ctx] = np.clip(new_Pc, -_BOUND, _BOUND)
        self._V[neg] = np.clip(new_Vj, -_BOUND, _BOUND)
        self._b[neg] = np.clip(new_bj, -_BOUND, _BOUND)
        self._V[row] = np.clip(new_vi, -_BOUND, _BOUND)
        self._b[row] = float(np.clip(new_bi, -_BOUND, _BOUND))

    def learn_many(
        self, users: Sequence[UserState], events: Sequence[Event]
    ) -> dict[int, Exception]:
        """The events in steps of at most ``max_batch``, each step holding at most one event of
        a user (a user's events in their order, one step after another: a user's vector and
        recent items move between their events, as one event at a time): each step's
        gradients are taken at its start and applied together. New items and users are drawn
        as :meth:`learn_one` draws them, event by event; the step's negatives in one draw
        (uniform over the catalogue as it stands after the step's new items)."""
        if self.max_batch <= 1:
            return super().learn_many(users, events)
        failed: dict[int, Exception] = {}
        for step in _steps([u.user_id for u in users], self.max_batch):
            part_u, part_e = [users[i] for i in step], [events[i] for i in step]
            if len(step) == 1:  # a step of one event is learn_one's
                errors = super().learn_many(part_u, part_e)
            else:
                try:
                    self._step(part_u, part_e)
                    errors = {}
                except Exception:  # nothing applied yet: learn them one by one, errors as data
                    errors = super().learn_many(part_u, part_e)
            failed.update({step[i]: exc for i, exc in errors.items()})
        return failed

    def _step(self, users: Sequence[UserState], events: Sequence[Event]) -> None:
        uids, ctxs, rows, weights = [], [], [], []
        for user, event in zip(users, events, strict=True):
            weight = event.weight
            if not math.isfinite(weight) or weight == 0:
                continue
            ctxs.append(self._context_rows(user))
            rows.append(self._item_row(event.item_id))
            self._user_vec(user.user_id)
            uids.append(user.user_id)
            weights.append(max(-self.max_weight, min(self.max_weight, weight)))
        if not rows:
            return
        row = np.asarray(rows)
        # the step's negatives in one draw (a call per event costs more than the step's maths)
        N = self._rng.integers(0, len(self._row_items), (len(rows), self.n_negatives))
        has_neg = (row[:, None] != N) & self._alive[N]
        lr, l2 = self.lr, self.l2
        who = list(dict.fromkeys(uids))
        of = {uid: x for x, uid in enumerate(who)}
        eu = np.asarray([of[uid] for uid in uids])
        U = np.stack([self._users[uid] for uid in who])
        C = _padded(ctxs)
        has_ctx = C >= 0
        n_ctx = has_ctx.sum(axis=1)
        Pc = self._P[np.maximum(C, 0)] * has_ctx[:, :, None]
        full = U[eu] + Pc.sum(axis=1) / np.maximum(n_ctx, 1)[:, None]
        w = np.asarray(weights)
        sign = np.where(w > 0, 1.0, -1.0)
        vi, Vj, bi, bj = self._V[row], self._V[N], self._b[row], self._b[N]
        x = sign[:, None] * (
            (vi * full).sum(axis=1)[:, None] - np.einsum("ekd,ed->ek", Vj, full) + bi[:, None] - bj
        )
        g = -np.abs(w)[:, None] * sign[:, None] * _sigmoid(-x) * has_neg
        g_sum = g.sum(axis=1)
        g_user = g_sum[:, None] * vi - np.einsum("ek,ekd->ed", g, Vj)
        d_u = -lr * (g_user + l2 * U[eu])
        d_vi = -lr * (g_sum[:, None] * full + l2 * vi)
        ok = has_neg.any(axis=1)  # an event without a negative learns nothing, as learn_one
        ok &= np.isfinite(d_u).all(axis=1) & np.isfinite(d_vi).all(axis=1)  # never poison
        ok &= np.isfinite(U[eu] + d_u).all(axis=1) & np.isfinite(vi + d_vi).all(axis=1)
        keep = ok[:, None]
        d_Vj = -lr * (-g[:, :, None] * full[:, None, :] + l2 * Vj)
        d_Pc = -lr * ((g_user / np.maximum(n_ctx, 1)[:, None])[:, None, :] + l2 * Pc)
        d_bi = -lr * (g_sum + l2 * bi)
        d_bj = -lr * (-g + l2 * bj)
        use_neg, use_ctx = has_neg & keep, has_ctx & keep
        np.add.at(U, eu[ok], d_u[ok])
        np.add.at(self._V, N[use_neg], d_Vj[use_neg])
        np.add.at(self._b, N[use_neg], d_bj[use_neg])
        np.add.at(self._P, C[use_ctx], d_Pc[use_ctx])
        np.add.at(self._V, row[ok], d_vi[ok])
        np.add.at(self._b, row[ok], d_bi[ok])
        touched = distinct(np.concatenate([row, N[has_neg], C[has_ctx]]))
        for param in (self._V, self._P, self._b):
            param[touched] = np.clip(param[touched], -_BOUND, _BOUND)
        U = np.clip(U, -_BOUND, _BOUND)
        for x_, uid in enumerate(who):
            vec = self._users.get(uid)
            if vec is not None:  # not evicted meanwhile
                vec[:] = U[x_]

    def forget_item(self, item_id: str) -> None:
        if drop_row(self._row, self._row_items, self._alive, item_id) is None:
            return
        self._dead += 1
        if self._dead > max(1024, len(self._row)):
            self._compact()

    def _compact(self) -> None:
        keep, self._row_items, self._row = live_rows(self._row_items)
        size = max(256, 2 * len(keep))
        V, P, b = np.zeros((size, self.n_factors)), np.zeros((size, self.n_factors)), np.zeros(size)
        V[: len(keep)], P[: len(keep)], b[: len(keep)] = self._V[keep], self._P[keep], self._b[keep]
        self._V, self._P, self._b = V, P, b
        self._alive = np.zeros(size, dtype=bool)
        self._alive[: len(keep)] = True
        self._dead = 0

    def _context_rows(self, user: UserState) -> list[int]:
        if self.context == 0:
            return []
        return [r for r in map(self._row.get, user.recent[-self.context :]) if r is not None]

    def user_vector(self, user: UserState) -> np.ndarray | None:
        """The user's factors plus the mean context vector of their last items; for a user the
        model does not hold (new, or evicted) only the latter. Never creates state."""
        vec = self._users.get(user.user_id)
        ctx = self._context_rows(user)
        if not ctx:
            return vec
        mean = self._P[ctx].mean(axis=0)
        return mean if vec is None else vec + mean

    def _user_vectors(self, own: list[np.ndarray | None], ctxs: list[list[int]]) -> np.ndarray:
        """:meth:`user_vector` of many users at once, from each one's factors (None: not held)
        and context rows (the same sums, so the same vectors)."""
        U = np.zeros((len(own), self.n_factors))
        held = [x for x, vec in enumerate(own) if vec is not None]
        if held:
            U[held] = np.stack([own[x] for x in held])
        C = _padded(ctxs)
        if C.shape[1]:
            used = C >= 0
            n_ctx = used.sum(axis=1)
            mean = (self._P[np.maximum(C, 0)] * used[:, :, None]).sum(axis=1)
            mean /= np.maximum(n_ctx, 1)[:, None]
            U[n_ctx > 0] += mean[n_ctx > 0]
        return U

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
        top = top_servable(scores, k, self._alive, self._row, exclude)
        if len(top) == 0:
            return []
        recent = [i for i in user.recent[-20:] if i in self._row]
        sims = None
        if recent:
            sims = self._V[top] @ self._V[[self._row[i] for i in recent]].T
        probs = _sigmoid(scores[top]).tolist()  # whole arrays: no numpy call per candidate
        nearest = np.argmax(sims, axis=1).tolist() if sims is not None else None
        out = []
        for j, r in enumerate(top.tolist()):
            item = self._row_items[r]
            if item is None or not np.isfinite(scores[r]):
                continue
            because = [recent[nearest[j]]] if nearest is not None else []
            out.append(Candidate(item, probs[j], [self.name], because))
        return out

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: one matrix product of the
        users' vectors and the item factors (in chunks of users), one top ``n`` per row."""
        size = len(self._row_items)
        users, own, ctxs = [], [], []
        for b, user in enumerate(batch.users):
            vec, ctx = self._users.get(user.user_id), self._context_rows(user)
            if vec is not None or ctx:
                users.append(b)
                own.append(vec)
                ctxs.append(ctx)
        if not users or n <= 0 or size == 0:
            return Proposals.empty()
        U = self._user_vectors(own, ctxs)
        # the rows scored: all of them, or (a large catalogue) the items with the largest
        # biases and what the other sources proposed
        live = np.flatnonzero(self._alive[:size])
        head = live
        if len(live) > self.retrieval_items:
            head = live[np.argpartition(-self._b[live], self.retrieval_items - 1)]
            head = head[: self.retrieval_items]
        ids, scored, ex_at, ex_cols, own = bulk_rows(
            batch, self._row_items, users, head, size, self.retrieval_items
        )
        V, b, dead = self._V[scored], self._b[scored], ~self._alive[scored]
        owners, cols, scores = [], [], []
        step = max(1, 4_000_000 // max(len(scored), 1))
        for lo in range(0, len(users), step):
            hi = min(len(users), lo + step)
            S = U[lo:hi] @ V.T + b
            S[:, dead] = -np.inf
            S[~np.isfinite(S)] = -np.inf
            mine = (ex_at >= lo) & (ex_at < hi) & (ex_cols >= 0)
            S[ex_at[mine] - lo, ex_cols[mine]] = -np.inf
            if own is not None:  # past the cut: each user's head and own pool only
                np.putmask(S, own.blocked(lo, hi), -np.inf)
            top = top_dense(S, n)
            picked = np.take_along_axis(S, top, axis=1)
            u, j = np.nonzero(np.isfinite(picked))
            owners.append(u + lo)
            cols.append(scored[top[u, j]])
            scores.append(_sigmoid(picked[u, j]))
        at, rows = np.concatenate(owners), np.concatenate(cols)
        recent = []
        for b in users:
            recent.append(
                [r for r in map(self._row.get, batch.users[b].recent[-20:]) if r is not None]
            )
        depth = max(1, max(len(r) for r in recent))
        R = np.full((len(users), depth), -1, dtype=np.int64)
        for x, r in enumerate(recent):
            R[x, : len(r)] = r

        def explain(entries: np.ndarray) -> list[list[str]]:
            # the user's recent item whose factors are most like the candidate's
            eu, er = at[entries], rows[entries]
            sims = np.einsum("ed,epd->ep", self._V[er], self._V[R[eu]])
            sims[R[eu] < 0] = -np.inf
            nearest = R[eu, np.argmax(sims, axis=1)]
            return [
                [self._row_items[r]] if r >= 0 else []  # type: ignore[list-item]
                for r in nearest.tolist()
            ]

        return Proposals(
            np.asarray(users, dtype=np.int64)[at], ids[rows], np.concatenate(scores), explain
        )
