"""Next-item transitions: decayed item -> next-item counts, scored from the current session.

:class:`TransitionModel` learns first-order transition counts (and optionally "skip"
transitions from the item two back) and scores what usually follows the last few items of the
session. It reads the session from the :class:`~models.base.UserState` it is given: through
:func:`models.events.apply_event` a model learns an event after the session boundary is settled
and before the user's state takes the event, so the previous item is
``user.session_items[-1]`` and the first event of a session has none.

>>> from models.base import UserState
>>> from models.events import Event, apply_event
>>> model = TransitionModel()
>>> for uid in ["u1", "u2", "u3"]:
...     user = UserState(uid)
...     for item in ["home", "shoes", "socks"]:
...         _ = apply_event(model, user, Event(uid, item, ts=0.0))
>>> me = UserState("me")
>>> me.observe("shoes", ts=0.0)
>>> [(c.item_id, c.because) for c in model.recommend(me, k=1)]
[('socks', ['shoes'])]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection
from itertools import chain

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.common import (
    MAX_WEIGHT,
    context_items,
    decayed_counts,
    forward_boost,
    positive_evidence,
    top_items,
)
from models.ranking import KEY_SHIFT, Proposals, RankBatch, Vocab, name_rank, unique_inverse

__all__ = ["TransitionModel"]


class TransitionModel(Recommender):
    """Decayed first-order (plus optional skip) transition counts, scored from the session.

    Parameters:
        half_life: after this much time (see ``clock``) a transition counts half; ``None``: never.
        clock: ``"time"`` measures ``half_life`` in seconds of event time, ``"events"`` in events.
        max_next: successors kept per item (pruned when a list grows past twice this).
        skip_weight: weight of the transition from the item two back (0 turns it off).
        context: how many of the session's last distinct items are used to recommend.
        context_decay: weight ``context_decay ** p`` of the session item ``p`` places back.
    """

    name = "session"

    def __init__(
        self,
        half_life: float | None = None,
        clock: str = "time",
        max_next: int = 50,
        skip_weight: float = 0.5,
        context: int = 3,
        context_decay: float = 0.5,
    ) -> None:
        if clock not in ("time", "events"):
            raise ValueError("clock must be 'time' or 'events'")
        if half_life is not None and not half_life > 0:
            raise ValueError("half_life must be > 0 or None")
        if max_next < 1 or context < 1 or skip_weight < 0 or not 0 < context_decay <= 1:
            raise ValueError("max_next, context >= 1, skip_weight >= 0, context_decay in (0, 1]")
        self.half_life = half_life
        self.clock = clock
        self.max_next = max_next
        self.skip_weight = skip_weight
        self.context = context
        self.context_decay = context_decay
        self._next: dict[str, dict[str, float]] = {}
        self._out: dict[str, float] = {}  # total outgoing weight per item, pruned mass included
        self._t0: float | None = None
        self._events = 0

    def __len__(self) -> int:
        return len(self._next)

    def _boost(self, ts: float) -> float:
        if self.half_life is None:
            return 1.0
        now = ts if self.clock == "time" else float(self._events)
        boost, self._t0 = forward_boost(self._t0, now, self.half_life, self._rescale)
        return boost

    def _rescale(self, factor: float) -> None:
        self._out = decayed_counts(self._out, factor)
        self._next = {
            i: kept for i, row in self._next.items() if (kept := decayed_counts(row, factor))
        }

    def _add(self, src: str, dst: str, w: float) -> None:
        row = self._next.setdefault(src, {})
        row[dst] = row.get(dst, 0.0) + w
        self._out[src] = self._out.get(src, 0.0) + w
        if len(row) > 2 * self.max_next:
            best = heapq.nlargest(self.max_next, row.items(), key=lambda p: p[1])
            self._next[src] = dict(best)

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
        self._events += 1
        w = min(weight, MAX_WEIGHT) * self._boost(ts)
        items = user.session_items
        if items and items[-1] != item_id:
            self._add(items[-1], item_id, w)
        if self.skip_weight and len(items) >= 2 and items[-2] not in (item_id, items[-1]):
            self._add(items[-2], item_id, self.skip_weight * w)

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        scores: dict[str, float] = {}
        best: dict[str, tuple[float, str]] = {}
        w = 1.0
        for item in context_items(user, self.context):
            row, out = self._next.get(item), self._out.get(item)
            if row and out:
                for j, c in row.items():
                    part = w * c / out
                    scores[j] = scores.get(j, 0.0) + part
                    if part > best.get(j, (0.0, ""))[0]:
                        best[j] = (part, item)
            w *= self.context_decay
        ranked = top_items(
            ((j, s) for j, s in scores.items() if j not in exclude and s > 0 and math.isfinite(s)),
            k,
        )
        return [Candidate(j, s, [self.name], [best[j][1]]) for j, s in ranked]

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: each context item's
        successors are read once; sums, exclusions and the top ``n`` are array operations."""
        owner, rows, weight = [], [], []
        for b, user in enumerate(batch.users):
            w = 1.0
            for item in context_items(user, self.context):
                if self._next.get(item) and self._out.get(item):
                    owner.append(b)
                    rows.append(item)
                    weight.append(w)
                w *= self.context_decay
        if not owner or n <= 0:
            return Proposals.empty()
        vocab = batch.vocab
        # each distinct context item's successors read once, into one flat pair of arrays
        nxt, distinct = self._next, list(dict.fromkeys(rows))
        sizes = np.fromiter((len(nxt[i]) for i in distinct), dtype=np.int64, count=len(distinct))
        succ = vocab.intern(list(chain.from_iterable(nxt[i] for i in distinct)))
        mass = np.fromiter(chain.from_iterable(nxt[i].values() for i in distinct), float, len(succ))
        at = {item: d for d, item in enumerate(distinct)}
        d = np.fromiter((at[i] for i in rows), dtype=np.int64, count=len(rows))
        lens = sizes[d]  # the context items' successors, one after the other
        first = np.repeat(np.cumsum(sizes)[d] - lens - (np.cumsum(lens) - lens), lens)
        flat = first + np.arange(len(first))
        part = np.repeat(np.arange(len(rows)), lens)
        cand, counts = succ[flat], mass[flat]
        w_of = np.asarray(weight)[part]
        out_of = np.asarray([self._out[i] for i in rows])[part]
        parts = w_of * counts / out_of
        who = np.asarray(owner, dtype=np.int64)[part]
        keys, inverse = unique_inverse((who << KEY_SHIFT) | cand)
        scores = np.bincount(inverse, weights=parts, minlength=len(keys))
        k_owner, k_item = keys >> KEY_SHIFT, keys & ((1 << KEY_SHIFT) - 1)
        ok = np.isfinite(scores) & (scores > 0) & batch.allowed(k_owner, k_item)
        live = np.flatnonzero(ok)
        top = live[top_by_name(k_owner[live], k_item[live], scores[live], n, vocab)]

        def explain(entries: np.ndarray) -> list[list[str]]:
            # the context item with the largest part (the first of equals)
            wanted = top[entries]
            mark = np.zeros(len(keys), dtype=bool)
            mark[wanted] = True
            sel = np.flatnonzero(mark[inverse])
            lead = sel[np.lexsort((part[sel], -parts[sel], inverse[sel]))]
            first = lead[np.r_[True, inverse[lead][1:] != inverse[lead][:-1]]]
            best = np.empty(len(keys), dtype=np.int64)
            best[inverse[first]] = part[first]
            return [[rows[p]] for p in best[wanted].tolist()]

        return Proposals(k_owner[top], k_item[top], scores[top], explain)

    def next_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely successors of ``item_id`` with their (decayed) probability."""
        row, out = self._next.get(item_id, {}), self._out.get(item_id, 0.0)
        if not out:
            return []
        return heapq.nsmallest(k, ((j, c / out) for j, c in row.items()), key=lambda p: -p[1])

    def forget_item(self, item_id: str) -> None:
        self._next.pop(item_id, None)
        self._out.pop(item_id, None)
        for row in self._next.values():  # rare (catalogue deletes): a full scan is acceptable
            row.pop(item_id, None)


def top_by_name(
    owner: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int, vocab: Vocab
) -> np.ndarray:
    """What :func:`models.ranking.top_per_owner_by_name` gives (each owner's ``k`` best
    entries, best first, equal scores by item name; ``owner`` grouped in increasing order),
    with names ranked only for the entries that tie with another of their owner's."""
    if not len(owner) or k <= 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")  # then by owner (stable): np.lexsort's order
    by = owner[order]
    order = order[np.argsort(by.astype(np.uint16) if by.max() < 1 << 16 else by, kind="stable")]
    o, s = owner[order], scores[order]
    starts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    keep = np.flatnonzero(s >= np.repeat(s[starts + np.minimum(k, counts) - 1], counts))
    same = (o[1:] == o[:-1]) & (s[1:] == s[:-1])
    tied = keep[(np.r_[same, False] | np.r_[False, same])[keep]]  # runs of equal scores
    if len(tied):  # each run (in place) by name
        run = np.cumsum(np.r_[True, ~same])[tied]
        tied_order = np.lexsort((name_rank(vocab, items[order[tied]]), run))
        at = np.searchsorted(keep, tied)
        keep[at] = tied[tied_order]
    group = o[keep]
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    place = np.arange(len(keep)) - np.repeat(first, np.diff(np.r_[first, len(keep)]))
    return order[keep[place < k]]
