"""A next-item softmax over the user's recent items, learned online (numpy SGD).

:class:`NextItemSoftmax` predicts the item a user takes next from the items they took last:
the user's context vector is ``h = sum_p a_p E[x_p]`` over their last ``history`` items
(``x_0`` the latest, position weights ``a_p`` starting at ``history_decay ** p`` and learned),
and every item ``j`` scores ``W[j] . h + b[j]``, plus ``U[t] . h`` averaged over the item's
catalogue tags ``t`` (so an item shares what is known of its genres from its first event on).
Each event is one step of softmax cross-entropy (Adagrad) towards the item that came next,
over items the user has *not* taken yet: the items a recommendation may show. That mask is
what makes the model rank well (MovieLens-100K, every 4th event scored, full softmax: 0.1948
HR@10 alone with it, 0.1813 without). By default the softmax is sampled: the target against
``n_negatives`` items, ``recent_share`` of them drawn from recent targets (popular items, the
hard negatives) and the rest uniformly, each logit corrected by the log of the item's
expected count in the draw. It ranks better than normalising over the whole catalogue
(0.2054 against 0.2023 on those MovieLens events, both with this class's defaults otherwise)
and costs ``n_negatives`` rows per step whatever the catalogue's size;
``full_softmax_items`` learns catalogues up to that size with the full softmax instead.

Unlike the neighbourhood sources, it is trained for the ranking it is asked for (cross-entropy
on the next item) and generalises through low-rank item factors; it adds to them in the
blend (docs/EVALUATION.md).

>>> from models.base import UserState
>>> seq = NextItemSoftmax(n_factors=8, seed=1)
>>> for n in range(40):
...     user = UserState(f"u{n}")
...     for item in ("a", "b", "c") if n % 2 else ("x", "y", "z"):
...         seq.learn_one(user, item, ts=0.0)
...         user.observe(item, ts=0.0)
>>> bob = UserState("bob")
>>> bob.observe("x", ts=0.0)
>>> [c.item_id for c in seq.recommend(bob, k=2, exclude=bob.seen)]
['y', 'z']
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.common import add_row, grown, top_servable
from models.sequence_batch import RECENT as _RECENT
from models.sequence_batch import SoftmaxBatches

__all__ = ["NextItemSoftmax"]

_EPS = 1e-6  # Adagrad's initial accumulator
#: The arrays with a row per item (grown together, :meth:`NextItemSoftmax._item`) and what
#: their rows hold before the item is added.
_FILL = {"_E": 0.0, "_W": 0.0, "_b": 0.0, "_gE": _EPS, "_gW": _EPS, "_gb": _EPS, "_alive": False}
_ROW_ARRAYS = tuple(_FILL)


class NextItemSoftmax(SoftmaxBatches, Recommender):
    """Online next-item softmax over decayed recent items, with tag factors.

    Parameters:
        n_factors: latent dimensions of the item and tag factors.
        lr: Adagrad learning rate.
        history: how many of the user's last items form the context.
        history_decay: initial weight ``history_decay ** p`` of the item ``p`` places back
            (the weights are then learned, at a tenth of ``lr``).
        full_softmax_items: catalogues of up to this many items are learned with the full
            softmax (0, the default: always sampled).
        n_negatives: items drawn per step by the sampled softmax.
        recent_share: the share of them drawn from the last 10,000 targets (the rest
            uniformly from the catalogue).
        init_scale: standard deviation of new factors.
        seed: seed of the initialiser and the sampler.
        max_batch: events of a batch (:meth:`learn_many`) learned in one step, their gradients
            taken at its start against one shared draw of negatives
            (:mod:`models.sequence_batch`); 1 learns one event at a time. 150, about a
            worker's batch at 1,000 events/s: a third less learning than steps of 64, as
            good in the hybrid (docs/EVALUATION.md); steps of 500 cost the softmax alone
            8 % of its MovieLens hits.
        retrieval_items: ranking a batch of users (:meth:`propose`) scores the whole catalogue
            up to this many items; beyond, the most frequent recent targets (this many) and the
            items the hybrid's other sources proposed (the two-stage cut).
    """

    name = "seq"
    #: Scores its catalogue in bulk: the hybrid asks it after the other sources (their
    #: proposals are its pool, :func:`models.ranking.candidate_rows`).
    bulk = True
    #: What a model pickled before the cut existed uses (its checkpoint lacks the attribute).
    retrieval_items: int = 2000
    #: What a model pickled before minibatches existed does (its checkpoint lacks the attribute).
    max_batch: int = 1

    def __init__(
        self,
        n_factors: int = 128,
        lr: float = 0.08,
        history: int = 20,
        history_decay: float = 0.8,
        full_softmax_items: int = 0,
        n_negatives: int = 500,
        recent_share: float = 0.5,
        init_scale: float = 0.05,
        seed: int = 0,
        max_batch: int = 150,
        retrieval_items: int = 2000,
    ) -> None:
        if n_factors < 1 or not lr > 0 or history < 1 or not 0 < history_decay <= 1:
            raise ValueError("need n_factors >= 1, lr > 0, history >= 1, 0 < history_decay <= 1")
        if full_softmax_items < 0 or n_negatives < 1 or not init_scale > 0:
            raise ValueError("need full_softmax_items >= 0, n_negatives >= 1, init_scale > 0")
        if max_batch < 1 or retrieval_items < 1:
            raise ValueError("need max_batch >= 1 and retrieval_items >= 1")
        if not 0 <= recent_share < 1:
            raise ValueError("need 0 <= recent_share < 1 (uniform draws keep every item drawable)")
        self.n_factors = n_factors
        self.lr = lr
        self.history = history
        self.history_decay = history_decay
        self.full_softmax_items = full_softmax_items
        self.n_negatives = n_negatives
        self.recent_share = recent_share
        self.init_scale = init_scale
        self.seed = seed
        self.max_batch = max_batch
        self.retrieval_items = retrieval_items
        self._rng = np.random.default_rng(seed)
        self._row: dict[str, int] = {}
        self._items: list[str] = []
        cap, d = 256, n_factors
        self._E = np.zeros((cap, d), dtype=np.float32)  # context factors
        self._W = np.zeros((cap, d), dtype=np.float32)  # output factors
        self._b = np.zeros(cap, dtype=np.float32)
        self._gE = np.full((cap, d), _EPS, dtype=np.float32)  # Adagrad accumulators
        self._gW = np.full((cap, d), _EPS, dtype=np.float32)
        self._gb = np.full(cap, _EPS, dtype=np.float32)
        self._alive = np.zeros(cap, dtype=bool)
        self._pos = (history_decay ** np.arange(history)).astype(np.float32)
        self._gpos = np.full(history, _EPS, dtype=np.float32)
        self._tag_row: dict[str, int] = {}
        self._U = np.zeros((0, d), dtype=np.float32)  # tag factors
        self._gU = np.zeros((0, d), dtype=np.float32)
        self._item_tags: dict[int, list[int]] = {}
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # item, tag, 1/len
        self._recent = np.zeros(_RECENT, dtype=np.int64)  # ring of recent targets (sampler)
        self._recent_n = 0

    def __len__(self) -> int:
        return len(self._row)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_tag_csr", None)  # the batch methods' tag matrix, rebuilt on first use
        # the item rows only: the arrays' spare capacity (up to half of them, only the initial
        # fill) is restored by __setstate__, not checkpointed
        used = len(self._items)
        state["_capacity"] = len(self._b)
        for name in _ROW_ARRAYS:
            state[name] = state[name][:used]
        return state

    def __setstate__(self, state: dict) -> None:
        # a model pickled (checkpointed) before ``recent_share`` existed drew half and half
        state = {"recent_share": 0.5, **state}
        capacity = state.pop("_capacity", None)  # None: pickled with its spare rows
        if capacity is not None:
            for name in _ROW_ARRAYS:
                rows = state[name]
                spare = np.full((capacity - len(rows), *rows.shape[1:]), _FILL[name], rows.dtype)
                state[name] = np.concatenate([rows, spare])
        self.__dict__.update(state)

    # -- items and tags ---------------------------------------------------------------------

    def _item(self, item_id: str) -> int:
        row = self._row.get(item_id)
        if row is not None:
            return row
        row = add_row(self._row, self._items, item_id)
        for name in _ROW_ARRAYS:  # grown together, their new rows holding the initial fill
            setattr(self, name, grown(getattr(self, name), row, fill=_FILL[name]))
        d = self.n_factors
        self._E[row] = self._rng.normal(0.0, self.init_scale, d)
        self._W[row] = self._rng.normal(0.0, self.init_scale, d)
        self._alive[row] = True
        return row

    def upsert_item(
        self,
        item_id: str,
        *,
        title: str = "",
        text: str = "",
        tags: Collection[str] = (),
    ) -> None:
        row = self._item(item_id)
        self._alive[row] = True
        rows = []
        for tag in dict.fromkeys(t for t in tags if t):
            t = self._tag_row.get(tag)
            if t is None:
                t = self._tag_row[tag] = len(self._tag_row)
                # grown by doubling: catalogues may carry many tags
                self._U = grown(self._U, t, minimum=16)
                self._gU = grown(self._gU, t, fill=_EPS, minimum=16)
            rows.append(t)
        if rows or row in self._item_tags:
            self._item_tags[row] = rows
            self._pairs = None

    def forget_item(self, item_id: str) -> None:
        row = self._row.get(item_id)
        if row is not None:
            self._alive[row] = False  # never scored again; the row stays (ids are not reused)

    def _tag_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._pairs is None:
            items, tags, share = [], [], []
            for row, rows in self._item_tags.items():
                items += [row] * len(rows)
                tags += rows
                share += [1.0 / len(rows)] * len(rows)
            self._pairs = (
                np.asarray(items, dtype=np.int64),
                np.asarray(tags, dtype=np.int64),
                np.asarray(share, dtype=np.float32),
            )
        return self._pairs

    # -- scoring ----------------------------------------------------------------------------

    def _context(self, user: UserState) -> tuple[np.ndarray, list[str]]:
        """Rows of the user's last items, latest first, and those items."""
        row = self._row
        items = [i for i in reversed(user.recent[-self.history :]) if i in row]
        return np.fromiter(map(row.__getitem__, items), np.int64, len(items)), items

    def _scores(self, h: np.ndarray, n: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Scores of the first ``n`` items (or of ``rows`` among them) for context ``h``."""
        pick = slice(0, n) if rows is None else rows
        scores = self._W[pick] @ h + self._b[pick]
        if self._tag_row:
            items, tags, share = self._tag_pairs()
            by_tag = self._U @ h
            scores += np.bincount(items, weights=share * by_tag[tags], minlength=n)[pick]
        return scores

    # -- learning ---------------------------------------------------------------------------

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        if not (math.isfinite(weight) and weight > 0):
            return  # a dislike says what not to show, not what comes next
        target = self._item(item_id)
        ctx, _ = self._context(user)
        if len(ctx) == 0:
            return
        n = len(self._items)
        pos = self._pos[: len(ctx)]
        h = pos @ self._E[ctx]
        full = n <= self.full_softmax_items
        if full:
            cand: np.ndarray | slice = slice(0, n)
            logits, t = self._scores(h, n), target
        else:
            cand, log_q = self._sample(target, n)
            logits, t = self._scores(h, n, cand) - log_q, 0
        blocked = ~self._alive[cand]
        seen = [self._row[i] for i in user.recent if i in self._row and i != item_id]
        if full:
            blocked[seen] = True  # the user's own items: never shown, so not competitors
        else:
            blocked |= np.isin(cand, seen)
        logits[blocked] = -np.inf
        logits -= logits.max()
        grad = np.exp(logits).astype(np.float32)
        grad /= grad.sum()
        grad[t] -= 1.0  # d(cross-entropy) / d(logits)
        if not np.isfinite(grad).all():
            return  # never let one event poison the factors
        self._recent[self._recent_n % _RECENT] = target
        self._recent_n += 1
        g_h = grad @ self._W[cand]
        if self._tag_row:
            items, tags, share = self._tag_pairs()
            # per item (an item drawn twice in sampled mode has its mass counted twice)
            spread = grad if full else np.bincount(cand, weights=grad, minlength=n)
            by_tag = np.bincount(tags, weights=share * spread[items], minlength=len(self._U))
            by_tag = by_tag.astype(np.float32)
            g_h += by_tag @ self._U
            self._adagrad(self._U, self._gU, np.outer(by_tag, h))
        if full:
            self._adagrad(self._W, self._gW, np.outer(grad, h), cand)
            self._adagrad(self._b, self._gb, grad, cand)
        else:  # an item drawn more than once takes the sum of its draws' gradients
            rows, inv = np.unique(cand, return_inverse=True)
            g = np.bincount(inv, weights=grad).astype(np.float32)
            g2 = np.bincount(inv, weights=grad * grad).astype(np.float32)
            self._adagrad(self._W, self._gW, np.outer(g, h), rows, np.outer(g2, h * h))
            self._adagrad(self._b, self._gb, g, rows, g2)
        g_pos = self._E[ctx] @ g_h
        self._adagrad(self._E, self._gE, pos[:, None] * g_h[None, :], ctx)
        self._gpos[: len(ctx)] += g_pos * g_pos
        self._pos[: len(ctx)] -= 0.1 * self.lr * g_pos / np.sqrt(self._gpos[: len(ctx)])

    def _sample(self, target: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The target and ``n_negatives`` items, ``recent_share`` of them drawn from recent
        targets (popular items are the hard negatives), the rest uniformly; each with the log
        of its expected count in the draw, subtracted from its logit (the sampled-softmax
        correction)."""
        filled = min(self._recent_n, _RECENT)
        k = self.n_negatives
        from_recent = int(k * self.recent_share) if filled else 0
        drawn = np.concatenate(
            [
                self._recent[self._rng.integers(0, filled, from_recent)] if filled else [],
                self._rng.integers(0, n, k - from_recent),
            ]
        ).astype(np.int64)
        cand = np.concatenate([[target], drawn[drawn != target]])
        q = np.full(len(cand), (k - from_recent) / n)
        if filled:
            counts = np.bincount(self._recent[:filled], minlength=n)
            q += from_recent * counts[cand] / filled
        return cand, np.log(q).astype(np.float32)

    def _adagrad(
        self,
        param: np.ndarray,
        acc: np.ndarray,
        grad: np.ndarray,
        rows: np.ndarray | slice | None = None,
        squared: np.ndarray | None = None,
    ) -> None:
        """One Adagrad step; ``squared`` is the squared gradient when it is not ``grad ** 2``
        (a row drawn several times adds each draw's square)."""
        if rows is None:
            acc += grad * grad if squared is None else squared
            param -= self.lr * grad / np.sqrt(acc)
        else:  # distinct rows
            acc[rows] += grad * grad if squared is None else squared
            param[rows] -= self.lr * grad / np.sqrt(acc[rows])

    # -- recommending -----------------------------------------------------------------------

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        """Top ``k`` items by softmax probability relative to the best item (in (0, 1]);
        ``because`` names the recent item that contributes most to each candidate."""
        ctx, mine = self._context(user)
        n = len(self._items)
        if k <= 0 or len(ctx) == 0:
            return []
        parts = self._pos[: len(ctx), None] * self._E[ctx]
        scores = self._scores(parts.sum(axis=0), n)
        top = top_servable(scores, k, self._alive, self._row, exclude)
        if len(top) == 0:
            return []
        probs = np.exp(scores[top] - scores[top[0]]).tolist()
        lead = np.argmax(parts @ self._W[top].T, axis=0).tolist()
        return [
            Candidate(self._items[r], p, [self.name], [mine[j]])
            for r, p, j in zip(top.tolist(), probs, lead, strict=True)
            if p > 0
        ]
