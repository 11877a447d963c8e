"""EASE over the streaming co-occurrence counts: item-to-item regression, refitted as events arrive.

EASE (Steck, 2019) learns an item-to-item weight matrix ``B`` with a zero diagonal that best
reconstructs each item's column of the interaction matrix from the other items' columns:
``B = I - P / diag(P)`` with ``P = (G + l2 * I)^-1``, where ``G`` is the item Gram matrix.
Unlike a cosine neighbourhood, the regression discounts neighbours that are only similar because
they are similar to each other, which is what makes it strong on long histories.

Here ``G`` is the windowed, recency-weighted co-occurrence that :class:`models.cf.ItemCooccurrence`
already keeps (so it is learned one event at a time, in bounded memory), and its diagonal the
items' interaction counts. Every ``refit_every`` events the model solves EASE on the
``max_items`` most interacted items. The solve is ``O(max_items ** 3)`` (~0.1-0.15 s of
CPU for 2,000 items on a small machine), so a head past ``refit_items`` items is solved less
often (the interval grows with the cube of its size: the same solve CPU per event), and the
solve runs on a background thread (LAPACK called with the GIL released) while events keep
flowing; its result is put in use by the lists asked for
``refit_every // 4`` or more events after it started (waiting for it only if it is not done by
then; learning never waits): the same lists always see the same weights, whatever the
machine's speed. A user's candidates are their recent items'
rows of ``B``, weighted ``history_decay ** p`` for the item ``p`` places back. Items outside
the solved head get no score from this source; the hybrid's other sources cover them.

>>> from models.base import UserState
>>> ease = ItemEASE(refit_every=1, l2=1.0)
>>> for uid, items in [("u1", "abc"), ("u2", "abd"), ("u3", "ab"), ("u4", "cd")]:
...     user = UserState(uid)
...     for item in items:
...         ease.learn_one(user, item, ts=0.0)
...         user.observe(item, ts=0.0)
>>> bob = UserState("bob")
>>> bob.observe("a", ts=0.0)
>>> [(c.item_id, c.because) for c in ease.recommend(bob, k=1, exclude=bob.seen)]
[('b', ['a'])]
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
from scipy.linalg import cython_lapack

from models.base import Candidate, UserState
from models.cf import ItemCooccurrence
from models.common import top_rows
from models.ranking import Proposals, RankBatch, decayed, runs_of, top_dense

__all__ = ["ItemEASE", "solve_ease"]

_SOLVER: ThreadPoolExecutor | None = None


def _solver() -> ThreadPoolExecutor:
    global _SOLVER
    if _SOLVER is None:
        _SOLVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recstream-ease")
    return _SOLVER


_Routine = Callable[[bytes, Any, int, Any, Any], None]


def _lapack(name: str) -> _Routine | None:
    """LAPACK's ``name`` (``uplo, n, a, lda, info``) from the table scipy exports for Cython,
    called through ctypes, which releases the GIL while it runs (scipy.linalg.lapack's wrappers
    hold it: the event loop would stall for the whole solve). None if scipy lacks the table."""
    try:
        capsule = cython_lapack.__pyx_capi__[name]  # type: ignore[attr-defined]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        pointer = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    except (AttributeError, KeyError, ValueError):
        return None
    intp = ctypes.POINTER(ctypes.c_int)
    signature = ctypes.CFUNCTYPE(None, ctypes.c_char_p, intp, ctypes.c_void_p, intp, intp)
    return signature(pointer)  # type: ignore[return-value]


_SPOTRF, _SPOTRI = _lapack("spotrf"), _lapack("spotri")


def _spd_inverse(gram: np.ndarray, l2: float) -> np.ndarray | None:
    """The inverse of ``gram + l2 * I`` (symmetric positive definite) in single precision,
    C-ordered (Cholesky: LAPACK's ``spotrf`` then ``spotri``, the GIL released), or None if
    it fails. One float32 copy in LAPACK's (Fortran) order, the ridge added to its diagonal in
    double precision, then the inverse's triangle mirrored in place, block by block: no
    identity matrix, no whole-matrix transposes (for 2,000 items these took as long as
    LAPACK)."""
    if _SPOTRF is None or _SPOTRI is None:
        return None
    a = np.asfortranarray(gram, dtype=np.float32)
    a[np.diag_indices(len(a))] = gram.diagonal() + l2
    n, info = ctypes.c_int(len(a)), ctypes.c_int(0)
    _SPOTRF(b"L", ctypes.byref(n), a.ctypes.data, ctypes.byref(n), ctypes.byref(info))
    if info.value == 0:
        _SPOTRI(b"L", ctypes.byref(n), a.ctypes.data, ctypes.byref(n), ctypes.byref(info))
    if info.value != 0 or not np.isfinite(a).all():
        return None
    inverse = a.T  # C-ordered: its upper triangle holds the inverse (a's lower one)
    _mirror_upper(inverse)
    return inverse


def _mirror_upper(m: np.ndarray, block: int = 256) -> None:
    """Copy a square matrix's upper triangle onto its lower one, in place, a column block at
    a time (a cache-friendly transpose).

    >>> m = np.array([[1.0, 2.0, 3.0], [0.0, 4.0, 5.0], [0.0, 0.0, 6.0]])
    >>> _mirror_upper(m, block=2)
    >>> m.tolist()
    [[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]]
    """
    n = len(m)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        m[hi:, lo:hi] = m[lo:hi, hi:].T
        square = m[lo:hi, lo:hi]
        below = np.tril_indices(hi - lo, -1)
        square[below] = square.T[below]


def solve_ease(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE weights ``B = I - P / diag(P)``, ``P = (gram + l2 * I)^-1``, zero diagonal.

    The matrix is symmetric positive definite (a Gram matrix plus a ridge), so ``P`` comes from
    its Cholesky factor, in single precision (the weights are kept in it anyway): 4x faster
    than a double-precision ``inv`` for 2,000 items (0.20 s against 0.85 s; 0.09 s since the
    copies around LAPACK were cut), the weights within 2e-6 of it relative to the largest;
    ``inv`` if the factorisation fails. Neither holds the GIL while LAPACK runs, so a solve on
    a thread leaves the event loop running.

    >>> B = solve_ease(np.array([[2.0, 1.0], [1.0, 2.0]]), l2=1.0)
    >>> [[round(float(x), 3) for x in row] for row in B]
    [[0.0, 0.333], [0.333, 0.0]]
    """
    inverse = _spd_inverse(gram, l2)
    if inverse is None:
        inverse = np.linalg.inv(gram + l2 * np.eye(len(gram)))
    weights = np.divide(inverse, inverse.diagonal().copy(), out=inverse)  # in place
    np.negative(weights, out=weights)  # -(x / d): the same numbers as (-x) / d
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32, copy=False)


def _gram_of_lists(
    sizes: np.ndarray, cols: np.ndarray, vals: np.ndarray, diagonal: np.ndarray
) -> np.ndarray:
    """The head's Gram matrix from its items' neighbour lists, one after the other (``sizes``
    entries each; ``cols``: the neighbour's place in the head, ``-1`` outside it)."""
    m = len(diagonal)
    r, c = np.repeat(np.arange(m), sizes), cols
    r, c, vals = r[c >= 0], c[c >= 0], vals[c >= 0]
    gram = np.zeros((m, m), dtype=np.float64)
    gram[r, c] = vals
    # symmetric: a pair pruned on one side keeps the other's count (counts are >= 0)
    gram[c, r] = np.maximum(gram[c, r], vals)
    gram[np.diag_indices(m)] = diagonal
    return gram


def _solve_built(build: Callable[[], np.ndarray], l2: float) -> np.ndarray:
    """:func:`solve_ease` of the Gram matrix ``build`` assembles (on the solve's thread)."""
    return solve_ease(build(), l2)


class ItemEASE(ItemCooccurrence):
    """EASE item-to-item regression on the co-occurrence of :class:`ItemCooccurrence`.

    Parameters:
        l2: ridge penalty of the regression (in units of interaction counts).
        refit_every: events between two solves of a head of up to ``refit_items`` items.
        refit_items: a larger head of ``m`` items is solved every ``refit_every * (m /
            refit_items) ** 3`` events: the solve costs ``O(m ** 3)``, so its CPU per event
            stays that of a ``refit_items`` head (``max_items``: never scaled).
        max_items: the most interacted items the solve covers.
        window, window_decay, max_neighbors, history, history_decay: as in
            :class:`~models.cf.ItemCooccurrence` (the co-occurrence and the user's items).
    """

    name = "ease"
    #: A model pickled before the interval scaled with the head takes the constructor's
    #: default: how often to solve is configuration, not learned state.
    refit_items: int = 1000
    #: Events between the last solve started and the next one (``refit_every`` at first).
    _interval: int = 0

    def __init__(
        self,
        l2: float = 500.0,
        refit_every: int = 500,
        refit_items: int = 1000,
        max_items: int = 2000,
        window: int = 50,
        window_decay: float = 0.95,
        max_neighbors: int = 1000,
        history: int = 15,
        history_decay: float = 0.8,
    ) -> None:
        super().__init__(
            window=window,
            window_decay=window_decay,
            max_neighbors=max_neighbors,
            history=history,
            history_decay=history_decay,
        )
        if not l2 > 0 or refit_every < 1 or refit_items < 2 or max_items < 2:
            raise ValueError("need l2 > 0, refit_every >= 1, refit_items >= 2 and max_items >= 2")
        self.l2 = l2
        self.refit_every = refit_every
        self.refit_items = refit_items
        self.max_items = max_items
        self._since_fit = 0
        self._B: np.ndarray | None = None  # (m, m) float32 weights over the head items
        self._head = np.zeros(0, dtype=np.int64)  # item index of each row of _B
        self._row_of: dict[int, int] = {}  # item index -> row of _B
        self._pending: tuple[Future[np.ndarray], np.ndarray] | None = None  # solve, its head
        self._forgotten: set[str] = set()  # items deleted while a solve ran

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_B"], state["_head"], state["_row_of"] = None, self._head[:0], {}
        state["_pending"] = None
        return state  # the solve is recomputed on first use after a restore, not stored

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
        self._since_fit += 1
        if self._since_fit >= max(self.refit_every, self._interval):
            self._since_fit = 0
            if self._pending is not None:  # no list was asked for since it was due
                self._install()
            head, build = self._gram_snapshot()
            self._interval = self._refit_interval(len(head))
            if len(head) >= 2:
                self._pending = (_solver().submit(_solve_built, build, self.l2), head)

    def _refit_interval(self, m: int) -> int:
        """Events until the solve after one of a head of ``m`` items: ``refit_every``, times
        ``(m / refit_items) ** 3`` past ``refit_items`` items (the same solve work per event).

        >>> ItemEASE(refit_every=500, refit_items=1000)._refit_interval(2000)
        4000
        """
        return max(self.refit_every, round(self.refit_every * (m / self.refit_items) ** 3))

    def refit(self) -> None:
        """Solve EASE on the current counts now, in this thread."""
        self._pending = None
        head, gram = self._gram()
        if len(head) < 2:
            self._B, self._head, self._row_of = None, head[:0], {}
        else:
            self._set(solve_ease(gram, self.l2), head)

    def _ready(self) -> None:
        """Put the pending solve in use if it is due (a quarter of its interval after it
        started, :meth:`_refit_interval`; the first one at once), before weights are read for
        a list. Due at an event count, so the lists do not depend on the thread's timing; a
        solve not finished by then is waited for, so a larger head, which takes longer to
        solve, is given longer: the head of 2,000 items, solved every 4,000 events in a third
        of a second, had 125 events (~0.1 s of a busy stream) and stalled it for the rest."""
        due = self._B is None or self._since_fit >= max(1, self._interval // 4)
        if self._pending is not None and due:
            self._install()
        elif self._B is None and self._items:
            self.refit()  # first use after a restore

    def _install(self) -> None:
        assert self._pending is not None
        future, head = self._pending
        self._pending = None
        self._set(future.result(), head)

    def _set(self, weights: np.ndarray, head: np.ndarray) -> None:
        self._B, self._head = weights, head
        self._row_of = {int(i): r for r, i in enumerate(head)}
        for item in self._forgotten:  # deleted while the solve ran
            r = self._row_of.get(self._index.get(item, -1))
            if r is not None:
                self._B[:, r] = 0.0
        self._forgotten.clear()

    def _gram(self) -> tuple[np.ndarray, np.ndarray]:
        """The head items and their Gram matrix (co-occurrence, counts on the diagonal)."""
        head, build = self._gram_snapshot()
        return head, build()

    def _gram_snapshot(self) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
        """The head items, and a function that builds their Gram matrix from copies of the
        counts taken now (the head's neighbour lists, gathered at once): the solve's thread
        runs it, so the event loop only copies and learning goes on. For a head of 2,000 items
        the assembly took the loop ~6 ms, and 30-40 ms from a dense copy of the counts that a
        small catalogue's model kept beside the lists (no longer kept)."""
        counts = self._n[: len(self._items)]
        live = np.flatnonzero(counts > 0)
        head = live[np.argsort(-counts[live], kind="stable")[: self.max_items]]
        # every head item's neighbour list at once: its (row, column, count) entries
        sizes, cols, vals = self._co.gather(head.tolist())
        row_at = np.full(len(self._items), -1, dtype=np.int64)
        row_at[head] = np.arange(len(head))
        return head, partial(_gram_of_lists, sizes, row_at[cols], vals, counts[head])

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        if k <= 0:
            return []
        self._ready()
        if self._B is None:
            return []
        rows: list[int] = []
        weights: list[float] = []
        mine: list[str] = []
        w = 1.0
        for item in reversed(user.recent[-self.history :]):
            r = self._row_of.get(self._index.get(item, -1))
            if r is not None:
                rows.append(r)
                weights.append(w)
                mine.append(item)
            w *= self.history_decay
        if not rows:
            return []
        parts = self._B[rows] * np.asarray(weights, dtype=np.float32)[:, None]
        scores = parts.sum(axis=0)
        banned = [self._row_of.get(self._index.get(x, -1)) for x in exclude]
        scores[[r for r in banned if r is not None]] = 0.0
        top = top_rows(scores, k)
        out = []
        for t in top:
            if not scores[t] > 0:
                break
            lead = np.argsort(-parts[:, t], kind="stable")[:2]
            because = [mine[p] for p in lead if parts[p, t] > 0]
            out.append(
                Candidate(self._items[self._head[t]], float(scores[t]), [self.name], because)
            )
        return out

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: the users' weighted rows of
        the solved weights summed into one array, one top ``n`` for all."""
        self._ready()
        if self._B is None or n <= 0:
            return Proposals.empty()
        # the users' recent items in the solved head, latest first: the rows of B to sum
        at, item_ids, back = batch.recent(self.history)
        head_row = np.full(len(self._items) + 1, -1, dtype=np.int64)  # the last: no item
        head_row[self._head] = np.arange(len(self._head))
        r = head_row[batch.vocab.row_of(self._items)[item_ids]]
        keep = np.flatnonzero(r >= 0)
        if not len(keep):
            return Proposals.empty()
        users, local_of, place = runs_of(at[keep])
        depth = int(place.max()) + 1
        R = np.full((len(users), depth), -1, dtype=np.int64)  # the users' rows, padded
        W = np.zeros((len(users), depth), dtype=np.float32)
        M = np.zeros((len(users), depth), dtype=np.int64)  # their items' ids
        R[local_of, place] = r[keep]
        W[local_of, place] = decayed(self.history_decay, self.history)[back[keep]]
        M[local_of, place] = item_ids[keep]
        # summed in the user's order, as recommend sums its parts; users with the most rows
        # first, so that those with a row ``p`` are a prefix (no gather and scatter of scores)
        lens = (R >= 0).sum(axis=1)
        order = np.argsort(-lens, kind="stable")
        summed = np.zeros((len(users), len(self._head)), dtype=np.float32)
        part = np.empty_like(summed)
        for p in range(depth):
            k = int(np.count_nonzero(lens > p))
            np.take(self._B, R[order[:k], p], axis=0, out=part[:k])
            part[:k] *= W[order[:k], p, None]
            summed[:k] += part[:k]
        scores = np.empty_like(summed)
        scores[order] = summed
        local = np.full(len(batch), -1, dtype=np.int64)
        local[users] = np.arange(len(users))
        ids = batch.vocab.rows(self._items)[self._head]
        row_of = np.full(len(batch.vocab), -1, dtype=np.int64)
        row_of[ids] = np.arange(len(ids))
        owner, banned = batch.excluded_rows(row_of)
        at = local[owner]
        scores[at[at >= 0], banned[at >= 0]] = 0.0
        top = top_dense(scores, n)
        picked = np.take_along_axis(scores, top, axis=1)
        u, j = np.nonzero(picked > 0)
        cols = top[u, j]
        names = batch.vocab.names

        def explain(entries: np.ndarray) -> list[list[str]]:
            # the (up to) two user items whose rows add most to the candidate
            eu, ec = u[entries], cols[entries]
            parts = np.where(R[eu] >= 0, self._B[R[eu], ec[:, None]] * W[eu], -np.inf)
            lead = np.argsort(-parts, axis=1, kind="stable")[:, :2]
            adds = np.take_along_axis(parts, lead, axis=1) > 0
            return [
                [names[mine[p]] for p, add in zip(lead_x, adds_x, strict=True) if add]
                for mine, lead_x, adds_x in zip(
                    M[eu].tolist(), lead.tolist(), adds.tolist(), strict=True
                )
            ]

        return Proposals(
            users[u],
            ids[cols],
            picked[u, j].astype(np.float64),
            explain,
        )

    def forget_item(self, item_id: str) -> None:
        super().forget_item(item_id)
        r = self._row_of.get(self._index.get(item_id, -1))
        if r is not None and self._B is not None:
            self._B[:, r] = 0.0
        if self._pending is not None:
            self._forgotten.add(item_id)
