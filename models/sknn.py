"""Session-kNN (V-SKNN style): the items of the recent sessions most similar to the current one.

:class:`SessionKNN` reads the session from the :class:`~models.base.UserState` it is given, as
:class:`~models.transitions.TransitionModel` does (see :func:`models.events.apply_event`).

>>> from models.base import UserState
>>> knn = SessionKNN()
>>> for uid, items in [("u1", "abc"), ("u2", "abd"), ("u3", "xyz")]:
...     user = UserState(uid)
...     for item in items:
...         knn.learn_one(user, item, ts=0.0)
...         user.observe(item, ts=0.0)
>>> me = UserState("me")
>>> me.observe("a", ts=0.0)
>>> sorted((c.item_id, c.because) for c in knn.recommend(me, k=5, exclude=me.seen))
[('b', ['a']), ('c', ['a']), ('d', ['a'])]
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Collection
from itertools import chain, islice
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Candidate, Recommender, UserState
from models.common import context_items, top_items
from models.ranking import (
    KEY_SHIFT,
    Proposals,
    RankBatch,
    Vocab,
    cut_to_kth,
    unique_inverse,
)
from models.transitions import top_by_name

__all__ = ["SessionKNN"]


class SessionKNN(Recommender):
    """Session-kNN: items of the recent sessions most similar to the current one.

    Keeps the last ``max_sessions`` sessions (keyed by user id and session id) as ordered item
    sets in a ring, with an inverted index item -> sessions holding it (newest last). The current
    session's last ``context`` items, weighted ``context_decay ** p`` (``p`` places back), are
    matched against at most ``sample_size`` recent sessions per item; similarity is the weighted
    overlap over ``sqrt(|current| * |other|)`` (cosine on binary sets); each item of the
    ``k_neighbors`` nearest sessions scores the sum of their similarities.

    Parameters:
        max_sessions: sessions remembered (the oldest is forgotten first).
        max_session_len: most items kept per session (the oldest are dropped first).
        k_neighbors: neighbour sessions whose items are scored.
        sample_size: most recent sessions looked at per item of the current session.
        context: how many of the session's last distinct items are matched.
        context_decay: weight ``context_decay ** p`` of the session item ``p`` places back.
    """

    name = "sknn"
    #: Items forgotten (deleted from the catalogue) and neither learned nor listed since: a
    #: session's catch-up skips them (class-level: checkpoints from before it lack it).
    _forgotten: frozenset[str] = frozenset()

    def __init__(
        self,
        max_sessions: int = 20_000,
        max_session_len: int = 50,
        k_neighbors: int = 100,
        sample_size: int = 500,
        context: int = 10,
        context_decay: float = 0.5,
    ) -> None:
        if min(max_sessions, max_session_len, k_neighbors, sample_size, context) < 1:
            raise ValueError("sizes must be >= 1")
        if not 0 < context_decay <= 1:
            raise ValueError("context_decay must be in (0, 1]")
        self.max_sessions = max_sessions
        self.max_session_len = max_session_len
        self.k_neighbors = k_neighbors
        self.sample_size = sample_size
        self.context = context
        self.context_decay = context_decay
        self._sessions: dict[int, dict[str, None]] = {}  # sid -> ordered item set
        self._keys: dict[int, tuple[str, str]] = {}
        self._sid: dict[tuple[str, str], int] = {}
        self._ring: deque[int] = deque()
        self._postings: dict[str, dict[int, None]] = {}  # item -> sids, oldest first
        self._next_sid = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_slots", None)  # the batched ranking's cache (see _slot_items)
        return state

    def _changed(self, sid: int) -> None:
        slots = self.__dict__.get("_slots")
        if slots is not None:
            slots[3].add(sid)

    def _slot_items(self, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
        """Each live session's items as ids of ``vocab`` (in the session's order, a row of
        ``max_session_len``) and its length, at ``sid % max_sessions`` (live sessions are the
        last ``max_sessions`` created, so no two share a slot), brought up to date; kept
        until the vocabulary changes (not pickled)."""
        slots = self.__dict__.get("_slots")
        shape = (self.max_sessions, self.max_session_len)
        if slots is None or slots[0] is not vocab or slots[1].shape != shape:
            grid = np.zeros(shape, dtype=np.int32)
            lens = np.zeros(self.max_sessions, dtype=np.int64)
            slots = self.__dict__["_slots"] = (vocab, grid, lens, set(self._sessions))
        _, grid, lens, dirty = slots
        for sid in sorted(dirty):  # a dropped session first, a newer one in its slot after
            items = self._sessions.get(sid, {})
            slot = sid % self.max_sessions
            lens[slot] = len(items)
            grid[slot, : len(items)] = vocab.intern(list(items))
        dirty.clear()
        return grid, lens

    def _add(self, sid: int, item: str) -> bool:
        items = self._sessions[sid]
        if item in items:
            return False
        self._changed(sid)
        items[item] = None
        self._postings.setdefault(item, {})[sid] = None
        if len(items) > self.max_session_len:
            self._remove(sid, next(iter(items)))
        return True

    def _remove(self, sid: int, item: str) -> None:
        self._changed(sid)
        self._sessions[sid].pop(item, None)
        posting = self._postings.get(item)
        if posting is not None:
            posting.pop(sid, None)
            if not posting:
                del self._postings[item]

    def _drop_session(self, sid: int) -> None:
        for item in list(self._sessions.get(sid, ())):
            self._remove(sid, item)
        self._sessions.pop(sid, None)
        key = self._keys.pop(sid, None)
        if key is not None:
            self._sid.pop(key, None)

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
            return
        key = (user.user_id, user.session_id or "")
        sid = self._sid.get(key)
        if sid is None:
            sid, self._next_sid = self._next_sid, self._next_sid + 1
            self._sessions[sid], self._keys[sid], self._sid[key] = {}, key, sid
            self._ring.append(sid)
        skip = self._forgotten
        for item in user.session_items[-self.max_session_len :]:
            if item not in skip:
                self._add(sid, item)  # a no-op unless the model missed events (e.g. a restart)
        if item_id in skip:  # learned again: it is back
            self._forgotten = skip - {item_id}
        self._add(sid, item_id)
        while len(self._ring) > self.max_sessions:
            self._drop_session(self._ring.popleft())

    def _neighbors(self, user: UserState) -> tuple[dict[str, float], list[tuple[int, float]]]:
        current: dict[str, float] = {}
        w = 1.0
        for item in context_items(user, self.context):
            current[item] = w
            w *= self.context_decay
        own = self._sid.get((user.user_id, user.session_id or ""))
        dot: dict[int, float] = {}
        for item, w in current.items():
            for sid in islice(reversed(self._postings.get(item, {})), self.sample_size):
                if sid != own:
                    dot[sid] = dot.get(sid, 0.0) + w
        sessions, size = self._sessions, len(current)
        sims = ((sid, d / math.sqrt(size * len(sessions[sid]))) for sid, d in dot.items())
        return current, heapq.nlargest(self.k_neighbors, sims, key=lambda p: (p[1], p[0]))

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        current, neighbors = self._neighbors(user)
        scores: dict[str, float] = {}
        for sid, sim in neighbors:
            for item in self._sessions[sid]:
                scores[item] = scores.get(item, 0.0) + sim
        ranked = top_items(((j, s) for j, s in scores.items() if j not in exclude), k)
        out: list[Candidate] = []
        for j, s in ranked:
            why: dict[str, float] = {}
            for sid, sim in neighbors:
                items = self._sessions[sid]
                if j in items:
                    for i, w in current.items():
                        if i in items:
                            why[i] = why.get(i, 0.0) + sim * w
            because = [i for i, _ in top_items(why.items(), 2)]
            out.append(Candidate(j, s, [self.name], because))
        return out

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: postings, overlaps, the
        nearest sessions and the items' sums are array operations over the whole batch."""
        vocab = batch.vocab
        owner, items, weight, size, own = [], [], [], [], []
        for b, user in enumerate(batch.users):
            current = context_items(user, self.context)
            w = 1.0
            for item in current:
                owner.append(b)
                items.append(item)
                weight.append(w)
                w *= self.context_decay
            size.append(len(current))
            own.append(self._sid.get((user.user_id, user.session_id or ""), -1))
        if not owner or n <= 0:
            return Proposals.empty()
        # each distinct context item's newest sessions read once, into one flat array
        postings, cap, distinct = self._postings, self.sample_size, list(dict.fromkeys(items))
        heads = [islice(reversed(postings.get(i, {})), cap) for i in distinct]
        sizes = np.fromiter((min(len(postings.get(i, ())), cap) for i in distinct), np.int64)
        sids = np.fromiter(chain.from_iterable(heads), np.int64, int(sizes.sum()))
        at = {item: d for d, item in enumerate(distinct)}
        d = np.fromiter((at[i] for i in items), dtype=np.int64, count=len(items))
        lens = sizes[d]  # the context items' sessions, one after the other
        first = np.repeat(np.cumsum(sizes)[d] - lens - (np.cumsum(lens) - lens), lens)
        c_sid = sids[first + np.arange(len(first))]
        c_owner = np.repeat(np.asarray(owner, dtype=np.int64), lens)
        c_w = np.repeat(np.asarray(weight), lens)
        other = c_sid != np.asarray(own, dtype=np.int64)[c_owner]
        keys, inverse = unique_inverse((c_owner[other] << KEY_SHIFT) | c_sid[other])
        if not len(keys):
            return Proposals.empty()
        dot = np.bincount(inverse, weights=c_w[other], minlength=len(keys))
        s_owner, s_sid = keys >> KEY_SHIFT, keys & ((1 << KEY_SHIFT) - 1)
        grid, s_lens = self._slot_items(vocab)
        s_len = s_lens[s_sid % self.max_sessions]
        sims = dot / np.sqrt((np.asarray(size, dtype=np.int64)[s_owner] * s_len).astype(float))
        nb = _top_neighbors(s_owner, sims, s_sid, self.k_neighbors)
        nb_owner, nb_slot, nb_sim = s_owner[nb], s_sid[nb] % self.max_sessions, sims[nb]
        counts = s_lens[nb_slot]
        width = int(counts.max())  # the neighbours' items, row by row, in session order
        e_item = grid[nb_slot, :width][np.arange(width) < counts[:, None]].astype(np.int64)
        e_nb = np.repeat(np.arange(len(nb)), counts)
        e_owner = nb_owner[e_nb]
        e_keys, e_inv = unique_inverse((e_owner << KEY_SHIFT) | e_item)
        scores = np.bincount(e_inv, weights=nb_sim[e_nb], minlength=len(e_keys))
        k_owner, k_item = e_keys >> KEY_SHIFT, e_keys & ((1 << KEY_SHIFT) - 1)
        live = np.flatnonzero(batch.allowed(k_owner, k_item))
        top = live[top_by_name(k_owner[live], k_item[live], scores[live], n, vocab)]

        def explain(entries: np.ndarray) -> list[list[str]]:
            # the (up to) two context items behind the neighbours that hold the candidate
            chosen = top[entries]
            at = np.full(len(e_keys), -1, dtype=np.int64)
            at[chosen] = np.arange(len(chosen))
            hold = np.flatnonzero(at[e_inv] >= 0)  # entries: a neighbour holds a candidate
            used = np.zeros(len(nb), dtype=bool)
            used[e_nb[hold]] = True
            sub = np.flatnonzero(used[e_nb])  # entries of those neighbours
            ctx = (np.asarray(owner, dtype=np.int64) << KEY_SHIFT) | vocab.intern(items)
            by_key = np.argsort(ctx)
            sub_keys = (e_owner[sub] << KEY_SHIFT) | e_item[sub]
            cols = np.minimum(np.searchsorted(ctx[by_key], sub_keys), len(ctx) - 1)
            in_ctx = ctx[by_key][cols] == sub_keys
            sub, cols = sub[in_ctx], cols[in_ctx]
            ctx_w = np.asarray(weight)[by_key][cols]
            M = sp.csr_matrix(
                (nb_sim[e_nb[sub]] * ctx_w, (e_nb[sub], cols)), shape=(len(nb), len(ctx))
            )
            C = sp.csr_matrix(
                (np.ones(len(hold)), (at[e_inv[hold]], e_nb[hold])), shape=(len(chosen), len(nb))
            )
            why = (C @ M).tocoo()
            names = np.asarray(items, dtype=object)[by_key]
            rank = np.argsort(np.argsort(names, kind="stable"), kind="stable")
            order = np.lexsort((rank[why.col], -why.data, why.row))
            rows = why.row[order]
            first = np.r_[True, rows[1:] != rows[:-1]]
            second = np.r_[False, ~first[1:] & first[:-1]]
            out: list[list[str]] = [[] for _ in range(len(chosen))]
            name_of = names.tolist()
            for r, c in zip(
                rows[first | second].tolist(), why.col[order][first | second].tolist(), strict=True
            ):
                out[r].append(name_of[c])
            return out

        return Proposals(k_owner[top], k_item[top], scores[top], explain)

    def forget_item(self, item_id: str) -> None:
        for sid in list(self._postings.get(item_id, ())):
            self._remove(sid, item_id)
        self._forgotten = self._forgotten | {item_id}  # rare (catalogue deletes): a copy is fine

    def upsert_item(
        self,
        item_id: str,
        *,
        title: str = "",
        text: str = "",
        tags: Collection[str] = (),
    ) -> None:
        if item_id in self._forgotten:  # listed again
            self._forgotten = self._forgotten - {item_id}


def _top_neighbors(owner: np.ndarray, sims: np.ndarray, sid: np.ndarray, k: int) -> np.ndarray:
    """``top_per_owner(owner, sims, k, -sid)`` (ties: the newer session) for entries sorted
    by owner, then sid: each owner's entries below its ``k``-th best similarity are dropped
    first (:func:`~models.ranking.cut_to_kth`); the rest, taken newest first, are sorted
    stably by similarity, then by owner (a radix sort)."""
    kept = cut_to_kth(owner, sims, k)[::-1]  # newest session first within each owner
    order = np.argsort(-sims[kept], kind="stable")
    by = owner[kept][order]
    order = order[np.argsort(by.astype(np.uint16) if owner[-1] < 1 << 16 else by, kind="stable")]
    group = owner[kept][order]
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    place = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    return kept[order[place < k]]
