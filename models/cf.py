"""Incremental item-to-item collaborative filtering from co-occurrence in users' histories.

When a user touches item ``i``, every item ``j`` among their last ``window`` items gets a
co-occurrence ``co(i, j)`` (both directions), weighted by how close ``j`` is to ``i`` in the
history. The similarity of two items is an asymmetric cosine ``co / (n_i ** alpha *
n_j ** (1 - alpha))`` over the items' interaction counts ``n`` (``alpha=0.5``: plain cosine),
damped by a shrinkage term for pairs seen only a few times. Each item keeps at most
``2 * max_neighbors`` neighbours (the weakest are pruned back to ``max_neighbors``), so memory
grows with the catalogue, never with its square. Recommending gathers the neighbour lists of
the user's recent items into numpy arrays and sums them there, never looping over the
catalogue. With ``half_life`` set, counts decay with the forward-decay trick (see
:func:`models.common.forward_boost`), which leaves similarities unchanged unless the balance
of evidence changes; evidence that has decayed to nothing is dropped.

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

from collections.abc import Collection
from typing import Any

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.common import (
    FLOOR,
    MAX_WEIGHT,
    add_row,
    forward_boost,
    grown,
    positive_evidence,
    top_rows,
)
from models.neighbours import NeighbourRows
from models.ranking import Proposals, RankBatch, decayed, top_of_sums, unique_inverse

__all__ = ["ItemCooccurrence"]


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
        max_neighbors: int = 200,
        alpha: float = 0.5,
        shrinkage: float = 0.0,
        history: int = 15,
        history_decay: float = 0.8,
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
        self._index: dict[str, int] = {}
        self._items: list[str] = []
        self._n = np.zeros(1024, dtype=np.float64)  # decayed interaction count per item
        self._co = NeighbourRows()  # row i: neighbour indices and co-occurrences
        self._t0: float | None = None
        self._scale = 1.0  # forward-decay boost of the newest event

    def __len__(self) -> int:
        return int(np.count_nonzero(self._n[: len(self._items)]))

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("_co"), list):  # a checkpoint from before NeighbourRows
            state["_co"] = NeighbourRows.of_dicts(state["_co"])
        self.__dict__.update(state)

    def _idx(self, item_id: str) -> int:
        idx = self._index.get(item_id)
        if idx is None:
            idx = add_row(self._index, self._items, item_id)
            self._co.extend_to(idx + 1)
            self._n = grown(self._n, idx)
        return idx

    def _boost(self, ts: float) -> float:
        if self.half_life is None:
            return 1.0
        boost, self._t0 = forward_boost(self._t0, ts, self.half_life, self._rescale)
        self._scale = max(self._scale, boost)
        return boost

    def _rescale(self, factor: float) -> None:
        self._n *= factor  # evidence decayed below FLOOR is forgotten
        self._n[self._n < FLOOR] = 0.0
        self._co.scale(factor, FLOOR)
        self._scale = 1.0

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        self._count(user, item_id, ts, weight)

    def _count(self, user: UserState, item_id: str, ts: float, weight: float) -> None:
        """Count one event: the item's interaction and its co-occurrences with the user's
        recent items (nothing for an event that carries no evidence)."""
        if not positive_evidence(weight, ts):
            return  # dislikes and garbage carry no co-occurrence evidence
        w = min(weight, MAX_WEIGHT) * (1.0 if self.half_life is None else self._boost(ts))
        index, decay, limit = self._index, self.window_decay, 2 * self.max_neighbors
        i = index.get(item_id)
        if i is None:
            i = self._idx(item_id)
        self._n[i] += w
        add, left = self._co.add_pair, self.window
        size = self._co.size(i)
        for other in reversed(user.recent):
            if other == item_id:
                continue
            if not left:
                break
            j = index.get(other)
            if j is None:
                j = self._idx(other)
            size, back = add(i, j, w)
            if back > limit:
                self._prune(j)
            left -= 1
            w *= decay
        if size > limit:
            self._prune(i)

    def _row(self, i: int, w: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices of item ``i`` and their similarities times ``w``."""
        idx, co, n_j = self._neighbours(i)
        if not len(idx):
            return idx, co
        return idx, self._sims(co, n_j, w / self._n[i] ** self.alpha)

    def _neighbours(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``i``'s counted neighbours: indices, co-occurrences, the neighbours' counts
        to the power ``1 - alpha`` (nothing when ``i`` itself has no count)."""
        idx, co, n_i = self._co.keys(i), self._co.values(i), self._n[i]
        if not len(idx) or n_i <= 0:
            return idx[:0], co[:0], co[:0]
        n_j = self._n[idx]
        live = n_j > 0
        return idx[live], co[live], n_j[live] ** (1.0 - self.alpha)

    def _sims(self, co: np.ndarray, n_j: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
        sim = co * scale / n_j
        if self.shrinkage:
            sim *= co / (co + self.shrinkage * self._scale)
        return sim

    def _prune(self, i: int) -> None:
        idx, sim = self._row(i)
        self._co.keep(i, idx[np.argsort(-sim, kind="stable")[: self.max_neighbors]].tolist())

    def similarity(self, i: str, j: str) -> float:
        """Similarity of ``j`` as a neighbour of ``i`` (0 when not a kept neighbour)."""
        a, b = self._index.get(i), self._index.get(j)
        if a is None or b is None:
            return 0.0
        co, n_a, n_b = self._co.get(a, b), float(self._n[a]), float(self._n[b])
        if co <= 0 or n_a <= 0 or n_b <= 0:
            return 0.0
        sim = co / (n_a**self.alpha * n_b ** (1.0 - self.alpha))
        return sim * co / (co + self.shrinkage * self._scale) if self.shrinkage else sim

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` kept neighbours of ``item_id`` most similar to it, best first."""
        i = self._index.get(item_id)
        if i is None:
            return []
        idx, sim = self._row(i)
        order = np.argsort(-sim, kind="stable")[:k]
        return [(self._items[idx[o]], float(sim[o])) for o in order]

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        if k <= 0:
            return []
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        sources: list[str] = []  # the user's item behind each part
        w = 1.0
        for item in reversed(user.recent[-self.history :]):
            i = self._index.get(item)
            if i is not None and self._co.size(i):
                parts.append(self._row(i, w))
                sources.append(item)
            w *= self.history_decay
        if not parts:
            return []
        idx = np.concatenate([p[0] for p in parts])
        sims = np.concatenate([p[1] for p in parts])
        cand, inverse = np.unique(idx, return_inverse=True)
        scores = np.bincount(inverse, weights=sims, minlength=len(cand))
        banned = [self._index[x] for x in exclude if x in self._index]
        if banned:
            scores[np.isin(cand, banned)] = 0.0
        scores[~np.isfinite(scores)] = 0.0
        top = top_rows(scores, k)  # cand is sorted: ties go to the lower item index
        top = top[scores[top] > 0]
        # because: the (up to) two user items contributing most to each chosen candidate,
        # ties to the first by name; one sort over the chosen candidates' entries
        part_of = np.repeat(np.arange(len(parts)), [len(p[0]) for p in parts])
        name_rank = np.argsort(np.argsort(np.asarray(sources)))
        sel = np.flatnonzero(np.isin(inverse, top))
        order = sel[np.lexsort((name_rank[part_of[sel]], -sims[sel], inverse[sel]))]
        groups = inverse[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        place = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        why: dict[int, list[str]] = {int(t): [] for t in top}
        first_two = order[place < 2]
        for t, p in zip(inverse[first_two].tolist(), part_of[first_two].tolist(), strict=True):
            why[t].append(sources[p])
        return [
            Candidate(self._items[cand[t]], float(scores[t]), [self.name], why[t])
            for t in top.tolist()
        ]

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: each distinct item's
        neighbour row is read once, and the sums, exclusions and top ``n`` are array
        operations over the whole batch."""
        if n <= 0:
            return Proposals.empty()
        # the users' recent items this model counts, latest first: owner, row, weight, id
        at, item_ids, back = batch.recent(self.history)
        row_of = batch.vocab.row_of(self._items)
        rows_all = row_of[item_ids]
        known = np.flatnonzero(rows_all >= 0)
        known = known[self._n[rows_all[known]] > 0]
        # each distinct item's neighbour row read once, into one flat pair of arrays
        distinct, d = unique_inverse(rows_all[known])
        sizes, keys, counts = self._co.gather(distinct.tolist())
        filled = sizes[d] > 0
        picked, d = known[filled], d[filled]
        if not len(picked):
            return Proposals.empty()
        owner, rows, mine = at[picked], rows_all[picked], item_ids[picked]
        weight = decayed(self.history_decay, self.history)[back[picked]]
        lens = sizes[d]  # the rows' entries, row after row
        first = np.repeat(np.cumsum(sizes)[d] - lens - (np.cumsum(lens) - lens), lens)
        flat = first + np.arange(len(first))
        part = np.repeat(np.arange(len(rows)), lens)
        cand, n_j = keys[flat], self._n[keys[flat]]
        live = n_j > 0  # neighbours forgotten since: no count
        part, cand = part[live], cand[live]
        scale = weight / self._n[rows] ** self.alpha
        sims = self._sims(counts[flat[live]], n_j[live] ** (1.0 - self.alpha), scale[part])
        who = owner[part]
        ids = batch.vocab.rows(self._items)
        excluded = batch.excluded_rows(row_of)
        p_owner, p_cand, p_score, key, chosen = top_of_sums(
            who, cand, sims, len(batch), len(self._items), n, excluded
        )
        name_rank = batch.vocab.name_order()[mine]  # ties to the first by name

        def explain(entries: np.ndarray) -> list[list[str]]:
            # the (up to) two user items contributing most, ties to the first by name
            if not len(entries):
                return []
            wanted = chosen[entries]
            mark = np.zeros(int(key.max()) + 1, dtype=bool)
            mark[wanted] = True
            sel = np.flatnonzero(mark[key])
            order = sel[np.lexsort((name_rank[part[sel]], -sims[sel], key[sel]))]
            groups = key[order]
            starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
            place = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
            first_two = order[place < 2]  # grouped by pair, in increasing order
            got = key[first_two]
            lo, hi = np.searchsorted(got, wanted), np.searchsorted(got, wanted, side="right")
            names = batch.vocab.names
            why = [names[i] for i in mine[part[first_two]].tolist()]
            return [why[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]

        return Proposals(p_owner, ids[p_cand], p_score, explain)

    def forget_item(self, item_id: str) -> None:
        i = self._index.get(item_id)
        if i is None:
            return
        self._n[i] = 0.0  # rows that still name it (pruned one way only) skip it: no count
        for j in self._co.keys(i).tolist():
            self._co.remove(j, i)
        self._co.clear(i)
