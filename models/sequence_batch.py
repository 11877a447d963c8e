"""The next-item softmax on batches: minibatch learning and ranking many users at once.

:class:`SoftmaxBatches` is the half of :class:`~models.sequence.NextItemSoftmax` that works on
a batch (its maths per event is in :mod:`models.sequence`):

* :meth:`~SoftmaxBatches.learn_many` learns the events in steps of ``max_batch``: each step's
  gradients are taken at its start, against one draw of negatives shared by its events (each
  event's own target and mask), and summed into one Adagrad step per parameter, with the
  accumulators growing by every event's squared gradient as they would one event at a time.
  ``max_batch=1`` is the per-event path (:meth:`learn_one` on each).
* :meth:`~SoftmaxBatches.propose` ranks a batch of users with one matrix product of their
  contexts and the item (and tag) factors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from models.base import UserState
from models.ranking import (
    Proposals,
    RankBatch,
    bulk_rows,
    run_starts,
    runs_of,
    top_dense,
    unique_inverse,
)

if TYPE_CHECKING:
    from models.events import Event

__all__ = ["RECENT", "SoftmaxBatches"]

#: Recent targets the sampled softmax draws ``recent_share`` of its negatives from.
RECENT = 10_000


def _dense(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else x


def _summed(rows: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """The distinct ``rows`` and, for each of ``values`` (one entry, or row, per row
    occurrence), the sum over each distinct row's occurrences, added in their order: one
    product each with a "picker" matrix built sorted (from a stable sort: no COO
    conversion, ~1.5x faster than ``np.unique`` and a COO build; ``np.add.at`` and
    ``np.add.reduceat`` are 2-6x slower on a step's rows, many of them repeated).

    >>> [a.tolist() for a in _summed(np.array([5, 3, 5]), np.array([1.0, 2.0, 4.0]))]
    [[3, 5], [2.0, 5.0]]
    """
    perm = np.argsort(rows, kind="stable")
    ordered = rows[perm]
    starts = np.flatnonzero(run_starts(ordered))
    picker = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), perm, np.append(starts, len(rows))),
        shape=(len(starts), len(rows)),
    )
    out = []
    for v in values:
        summed = picker @ (v if v.ndim == 2 else v[:, None])
        out.append(np.asarray(summed, dtype=np.float32).reshape((len(starts), *v.shape[1:])))
    return (ordered[starts], *out)


class SoftmaxBatches:
    """Batch methods of :class:`~models.sequence.NextItemSoftmax` (a mixin: it reads the
    model's parameters)."""

    # reads the parameters and calls the per-event helpers of NextItemSoftmax

    # -- learning ---------------------------------------------------------------------------

    def learn_many(
        self, users: Sequence[UserState], events: Sequence[Event]
    ) -> dict[int, Exception]:
        if self.max_batch <= 1:
            return super().learn_many(users, events)  # type: ignore[misc]
        failed: dict[int, Exception] = {}
        for lo in range(0, len(events), self.max_batch):
            hi = min(len(events), lo + self.max_batch)
            if hi - lo == 1:  # a step of one event is learn_one's
                errors = super().learn_many(users[lo:hi], events[lo:hi])  # type: ignore[misc]
                failed.update({lo + i: exc for i, exc in errors.items()})
                continue
            try:
                self._step(users[lo:hi], events[lo:hi])
            except Exception:  # nothing applied yet: learn them one by one, errors as data
                errors = super().learn_many(users[lo:hi], events[lo:hi])  # type: ignore[misc]
                failed.update({lo + i: exc for i, exc in errors.items()})
        return failed

    def _tag_matrix(self, n: int) -> np.ndarray | sp.csr_matrix | None:
        """Item x tag shares, at least ``n`` rows (those past the items: empty), dense when
        small; kept while the tags are unchanged."""
        if not self._tag_row:
            return None
        pairs = self._tag_pairs()
        cached = self.__dict__.get("_tag_csr")
        if cached is None or cached[0] is not pairs or cached[1].shape[0] < n:
            rows = max(n, len(self._W))
            items, tags, share = pairs
            matrix = sp.csr_matrix((share, (items, tags)), shape=(rows, len(self._U)))
            small = rows * len(self._U) <= 1 << 21
            cached = self.__dict__["_tag_csr"] = (pairs, matrix.toarray() if small else matrix)
        return cached[1]

    def _step(self, users: Sequence[UserState], events: Sequence[Event]) -> None:
        targets, contexts, owner = [], [], []
        first: dict[str, list[int]] = {}  # each user's items at their first event of the step
        for user, event in zip(users, events, strict=True):
            if not (math.isfinite(event.weight) and event.weight > 0):
                continue
            target = self._item(event.item_id)
            ctx, _ = self._context(user)
            if len(ctx):
                if user.user_id not in first:
                    first[user.user_id] = [
                        r for r in map(self._row.get, user.recent) if r is not None
                    ]
                targets.append(target)
                contexts.append(ctx)
                owner.append(user.user_id)
        if not targets:
            return
        n, m = len(self._items), len(targets)
        T = np.asarray(targets, dtype=np.int64)
        depth = max(len(c) for c in contexts)
        C = np.zeros((m, depth), dtype=np.int64)
        used = np.zeros((m, depth), dtype=bool)
        for e, ctx in enumerate(contexts):
            C[e, : len(ctx)], used[e, : len(ctx)] = ctx, True
        Ectx = self._E[C]  # padding: row 0, weighed 0
        weight = self._pos[:depth][None, :] * used
        H = np.einsum("ep,epd->ed", weight, Ectx)
        tags = self._tag_matrix(n)
        full = n <= self.full_softmax_items
        cols = np.arange(n) if full else self._draw(n)
        # logits: the target of each event, then the shared columns (its own target there
        # removed, as it is from an event's own draw)
        rows = np.concatenate([T, cols])
        log_q = np.zeros(len(rows), dtype=np.float32) if full else self._log_q(rows, n)
        logq_t, log_q = log_q[:m], log_q[m:]
        scores = H @ self._W[rows].T + self._b[rows]
        if tags is not None:
            scores += np.asarray((tags[rows] @ (self._U @ H.T)).T, dtype=np.float32)
        logit_t = scores[np.arange(m), np.arange(m)] - logq_t
        logits = scores[:, m:] - log_q
        blocked = ~self._alive[cols][None, :] | (cols[None, :] == T[:, None])
        blocked |= self._seen_mask(owner, first, T, cols, n)
        logits[blocked] = -np.inf
        logit_t = np.where(self._alive[T], logit_t, -np.inf)
        top = np.maximum(logit_t, logits.max(axis=1))
        p_t = np.exp(logit_t - top)
        P = np.exp(logits - top[:, None])
        total = p_t + P.sum(axis=1)
        G_t = (p_t / total - 1.0).astype(np.float32)  # d(cross-entropy) / d(target logit)
        G = (P / total[:, None]).astype(np.float32)
        ok = np.isfinite(G_t) & np.isfinite(G).all(axis=1)  # never poison the factors
        if not ok.all():
            if not ok.any():
                return
            G_t, G, H, T, Ectx, used = G_t[ok], G[ok], H[ok], T[ok], Ectx[ok], used[ok]
            C, weight = C[ok], weight[ok]
        for t in T.tolist():  # the sampler's ring of recent targets
            self._recent[self._recent_n % RECENT] = t
            self._recent_n += 1
        g_h = G_t[:, None] * self._W[T] + G @ self._W[cols]
        if tags is not None:
            by_tag = G_t[:, None] * _dense(tags[T]) + (tags[cols].T @ G.T).T
            by_tag = np.asarray(by_tag, dtype=np.float32)
            g_h += by_tag @ self._U
            self._adagrad(self._U, self._gU, by_tag.T @ H, None, (by_tag**2).T @ (H**2))
        H2 = H * H
        out_rows, g_W, g2_W, g_b, g2_b = _summed(
            np.concatenate([T, cols]),
            np.concatenate([G_t[:, None] * H, G.T @ H]),
            np.concatenate([(G_t**2)[:, None] * H2, (G**2).T @ H2]),
            np.concatenate([G_t, G.sum(axis=0)]),
            np.concatenate([G_t**2, (G**2).sum(axis=0)]),
        )
        self._adagrad(self._W, self._gW, g_W, out_rows, g2_W)
        self._adagrad(self._b, self._gb, g_b, out_rows, g2_b)
        g_pos = np.einsum("epd,ed->ep", Ectx, g_h) * used
        # each context row's gradient: its position weights times the events' g_h, summed
        e_at, p_at = np.nonzero(used)
        w, g_at = weight[e_at, p_at][:, None], g_h[e_at]
        ctx_rows, g_E, g2_E = _summed(C[e_at, p_at], w * g_at, (w * w) * (g_at * g_at))
        self._adagrad(self._E, self._gE, g_E, ctx_rows, g2_E)
        depth = C.shape[1]
        self._gpos[:depth] += (g_pos**2).sum(axis=0)
        self._pos[:depth] -= 0.1 * self.lr * g_pos.sum(axis=0) / np.sqrt(self._gpos[:depth])

    def _draw(self, n: int) -> np.ndarray:
        """One draw of ``n_negatives`` items for a step (as each event draws its own one at a
        time)."""
        filled = min(self._recent_n, RECENT)
        k = self.n_negatives
        from_recent = int(k * self.recent_share) if filled else 0
        return np.concatenate(
            [
                self._recent[self._rng.integers(0, filled, from_recent)] if filled else [],
                self._rng.integers(0, n, k - from_recent),
            ]
        ).astype(np.int64)

    def _log_q(self, rows: np.ndarray, n: int) -> np.ndarray:
        """Each of ``rows``' log expected count in a step's draw."""
        filled = min(self._recent_n, RECENT)
        k = self.n_negatives
        from_recent = int(k * self.recent_share) if filled else 0
        q = np.full(len(rows), (k - from_recent) / n)
        if filled:
            counts = np.bincount(self._recent[:filled], minlength=n)
            q += from_recent * counts[rows] / filled
        return np.log(q).astype(np.float32)

    def _seen_mask(
        self,
        owner: list[str],
        first: dict[str, list[int]],
        T: np.ndarray,
        cols: np.ndarray,
        n: int,
    ) -> np.ndarray:
        """``[e, j]``: whether ``cols[j]`` is one of the items event ``e``'s user had taken
        before it: their items at their first event of the step, and the targets of their
        earlier events in it (an item pushed out of a long history by those is still masked)."""
        distinct, inverse = unique_inverse(cols)
        place = np.full(n, -1, dtype=np.int64)
        place[distinct] = np.arange(len(distinct))
        who = list(first)
        at_user = {uid: u for u, uid in enumerate(who)}
        base = np.zeros((len(who), len(distinct)), dtype=bool)
        u_idx = np.repeat(np.arange(len(who)), [len(first[uid]) for uid in who])
        at = place[np.asarray([r for uid in who for r in first[uid]], dtype=np.int64)]
        base[u_idx[at >= 0], at[at >= 0]] = True
        eu = np.asarray([at_user[uid] for uid in owner])
        hit = base[eu]
        earlier: dict[str, list[int]] = {}
        for e, (uid, t) in enumerate(zip(owner, T.tolist(), strict=True)):
            before = earlier.setdefault(uid, [])
            if before:
                hit[e, before] = True
            if place[t] >= 0:
                before.append(int(place[t]))
        return hit[:, inverse]

    # -- ranking ----------------------------------------------------------------------------

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: one matrix product of the
        users' contexts and the item (and tag) factors, in chunks of users; one top ``n``."""
        size = len(self._items)
        if n <= 0:
            return Proposals.empty()
        # each user's recent items this model has rows for, latest first (``_context``)
        ctx_owner, item_ids, _ = batch.recent(self.history)
        ctx_rows = batch.vocab.row_of(self._items)[item_ids]
        keep = np.flatnonzero(ctx_rows >= 0)
        if not len(keep):
            return Proposals.empty()
        users, local, place = runs_of(ctx_owner[keep])
        lens = np.bincount(local)
        depth = int(lens.max())
        used = np.arange(depth)[None, :] < lens[:, None]
        C = np.zeros((len(users), depth), dtype=np.int64)
        C[local, place] = ctx_rows[keep]
        M = np.zeros((len(users), depth), dtype=np.int64)  # their items' ids
        M[local, place] = item_ids[keep]
        P = self._pos[None, :depth, None] * self._E[C]
        P[~used] = 0.0
        H = P.sum(axis=1)
        tags = self._tag_matrix(size)
        # the catalogue's rows scored: all of them, or (a large catalogue) the most frequent
        # recent targets and what the other sources proposed
        filled = min(self._recent_n, RECENT)
        counts = np.bincount(self._recent[:filled], minlength=size)[:size]
        head = np.flatnonzero(counts)
        if len(head) > self.retrieval_items:
            head = head[np.argpartition(-counts[head], self.retrieval_items - 1)]
            head = head[: self.retrieval_items]
        ids, scored, ex_at, ex_cols, own = bulk_rows(
            batch, self._items, users, head, size, self.retrieval_items
        )
        W, b = self._W[scored], self._b[scored]
        if tags is not None:  # the tags' factors folded into each item's: one product a chunk
            W += np.asarray(tags[scored] @ self._U, dtype=np.float32)
        dead = ~self._alive[scored]
        owners, cols, scores = [], [], []
        step = max(1, 4_000_000 // max(len(scored), 1))
        for lo in range(0, len(users), step):
            hi = min(len(users), lo + step)
            S = H[lo:hi] @ W.T + b
            S[:, dead] = -np.inf
            S[~np.isfinite(S)] = -np.inf
            mine = (ex_at >= lo) & (ex_at < hi) & (ex_cols >= 0)
            S[ex_at[mine] - lo, ex_cols[mine]] = -np.inf
            if own is not None:  # past the cut: each user's head and own pool only
                np.putmask(S, own.blocked(lo, hi), -np.inf)
            top = top_dense(S, n)
            picked = np.take_along_axis(S, top, axis=1)
            best = picked[:, :1]
            probs = np.exp(picked - np.where(np.isfinite(best), best, 0.0))
            u, j = np.nonzero(np.isfinite(picked) & (probs > 0))
            owners.append(u + lo)
            cols.append(scored[top[u, j]])
            scores.append(probs[u, j].astype(np.float64))
        at, rows = np.concatenate(owners), np.concatenate(cols)

        def explain(entries: np.ndarray) -> list[list[str]]:
            # the recent item whose weighted factors add most to the candidate's score
            eu, er = at[entries], rows[entries]
            adds = np.einsum("epd,ed->ep", P[eu], self._W[er])
            adds[np.arange(depth)[None, :] >= lens[eu, None]] = -np.inf  # padding
            lead = np.argmax(adds, axis=1)
            names = batch.vocab.names
            return [[names[i]] for i in M[eu, lead].tolist()]

        return Proposals(users[at], ids[rows], np.concatenate(scores), explain)
