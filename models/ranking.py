"""Batched ranking: a batch of users, the arrays a source's candidates travel in, the blend.

The hybrid ranks every user a batch touched at once (:meth:`HybridRecommender.recommend_batch
<models.hybrid.HybridRecommender.recommend_batch>`). Each weighted source proposes its top
candidates for all of its users in one call (:meth:`Recommender.propose
<models.base.Recommender.propose>`) as flat arrays, :class:`Proposals`: entry ``e`` is item
``items[e]`` (an integer of the batch's :class:`Vocab`) for user ``owner[e]`` with
``scores[e]``; the ``because`` of an entry is asked for only if the entry reaches a final list
(``explain``). :func:`blend` normalises each source's scores per user, weighs them by the user's
phase and keeps the top ``k`` per user, without a Python loop over candidates.

>>> vocab = Vocab()
>>> batch = RankBatch([UserState("u"), UserState("v")], [{"x"}, ()], vocab)
>>> props = Proposals.of_lists(batch, [[Candidate("x", 1.0), Candidate("y", 2.0)], []])
>>> props.owner.tolist(), [vocab.names[i] for i in props.items], props.explain(np.arange(2))
([0, 0], ['x', 'y'], [[], []])
>>> batch.excluded_pairs()[0].tolist(), [vocab.names[i] for i in batch.excluded_pairs()[1]]
([0], ['x'])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.base import Candidate, UserState

__all__ = [
    "KEY_SHIFT",
    "OwnPool",
    "Proposals",
    "RankBatch",
    "Source",
    "Vocab",
    "blend",
    "bulk_rows",
    "candidate_rows",
    "cut_to_kth",
    "distinct",
    "name_rank",
    "run_starts",
    "sum_per_owner",
    "top_dense",
    "top_of_sums",
    "top_per_owner",
    "top_per_owner_by_cand",
    "top_per_owner_by_name",
    "unique_inverse",
    "weights_table",
]

#: A (user, item) pair as one integer: ``owner << KEY_SHIFT | item``.
KEY_SHIFT = 32


class Vocab:
    """Item ids as integers for batched ranking, and each source's rows mapped onto them.

    A cache the hybrid keeps beside its sources (never pickled: rebuilt on first use). The
    maps of a source's row list are cached by the list object and extended as it grows; a
    source that renumbers its rows builds a new list, which is mapped afresh.

    >>> vocab = Vocab()
    >>> vocab.intern(["b", "a", "b"]).tolist(), len(vocab)
    ([0, 1, 0], 2)
    >>> rows = ["a", None, "c"]
    >>> vocab.rows(rows).tolist(), vocab.row_of(rows).tolist()
    ([1, -1, 2], [-1, 0, 2])
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self._maps: dict[int, tuple[Sequence[str | None], np.ndarray]] = {}
        #: row_of's maps, by row list: (the list, the rows mapped, id -> row)
        self._row_of: dict[int, tuple[Sequence[str | None], int, np.ndarray]] = {}
        #: the names sorted, their ids, and each id's place among them (see name_order)
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def id(self, item: str) -> int:
        got = self.ids.get(item)
        if got is None:
            got = self.ids[item] = len(self.names)
            self.names.append(item)
        return got

    def intern(self, items: Iterable[str]) -> np.ndarray:
        items = items if isinstance(items, list | tuple) else list(items)
        got = list(map(self.ids.get, items))  # known ids at C speed, then the new ones
        if None in got:
            get = self.id
            got = [get(x) if g is None else g for x, g in zip(items, got, strict=True)]
        return np.asarray(got, dtype=np.int64)

    def rows(self, items: Sequence[str | None]) -> np.ndarray:
        """Id of each row of a source's row list (``-1`` for a dead row, ``None``)."""
        cached = self._maps.get(id(items))
        if cached is not None and cached[0] is items:
            ids = cached[1]
            if len(ids) == len(items):
                return ids
            tail = self._map(items[len(ids) :])
            ids = np.concatenate([ids, tail])
        else:
            if len(self._maps) > 256:  # lists of renumbered sources: start over
                self._maps.clear()
            ids = self._map(items)
        self._maps[id(items)] = (items, ids)
        return ids

    def _map(self, items: Iterable[str | None]) -> np.ndarray:
        get = self.id
        return np.fromiter((-1 if x is None else get(x) for x in items), dtype=np.int64)

    def name_order(self) -> np.ndarray:
        """Each id's place among all the ids sorted by name, kept up to date as the vocabulary
        grows: the names added since are sorted among themselves and merged in (a sort of the
        whole vocabulary only the first time).

        >>> vocab = Vocab()
        >>> _ = vocab.intern(["b", "d"]); vocab.name_order().tolist()
        [0, 1]
        >>> _ = vocab.intern(["c", "a"]); vocab.name_order().tolist()
        [1, 3, 2, 0]
        """
        n = len(self.names)
        if self._sorted is not None and len(self._sorted[2]) == n:
            return self._sorted[2]
        if self._sorted is None:
            names, ids = np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
        else:
            names, ids, _ = self._sorted
        new_ids = np.arange(len(ids), n, dtype=np.int64)
        new_names = np.asarray(self.names[len(ids) :], dtype=object)
        by_name = np.argsort(new_names, kind="stable")
        new_names, new_ids = new_names[by_name], new_ids[by_name]
        at = np.searchsorted(names, new_names)
        names, ids = np.insert(names, at, new_names), np.insert(ids, at, new_ids)
        place = np.empty(n, dtype=np.int64)
        place[ids] = np.arange(n)
        self._sorted = (names, ids, place)
        return place

    def row_of(self, items: Sequence[str | None]) -> np.ndarray:
        """The row of each id in a source's row list (``-1``: the source has no row for it; an
        id of several rows, the last). Cached by the list, as :meth:`rows`, and extended as the
        list and the vocabulary grow (a batch's ranking asks it of every source: rebuilt, it
        would cost a pass over the vocabulary each time). Read-only.

        >>> vocab = Vocab()
        >>> rows = ["a", "b"]
        >>> vocab.row_of(rows).tolist()
        [0, 1]
        >>> rows.append("c"); _ = vocab.intern(["z"]); vocab.row_of(rows).tolist()
        [0, 1, -1, 2]
        """
        ids = self.rows(items)
        n = len(self.names)
        cached = self._row_of.get(id(items))
        if cached is not None and cached[0] is items and cached[1] <= len(ids):
            _, done, out = cached
            if done == len(ids) and len(out) == n:
                return out
            # a copy, extended: an array handed out before stays as it was
            out = np.concatenate([out, np.full(n - len(out), -1, dtype=np.int64)])
        else:
            if len(self._row_of) > 256:  # lists of renumbered sources: start over
                self._row_of.clear()
            done, out = 0, np.full(n, -1, dtype=np.int64)
        tail = ids[done:]
        live = tail >= 0
        out[tail[live]] = done + np.flatnonzero(live)
        self._row_of[id(items)] = (items, len(ids), out)
        return out


def decayed(decay: float, places: int) -> np.ndarray:
    """``1, decay, decay * decay, ...``: ``places`` weights, each the one before times ``decay``
    (as a loop doing ``w *= decay`` has them; ``decay ** p`` can differ in the last bit).

    >>> decayed(0.5, 3).tolist(), decayed(0.5, 0).tolist()
    ([1.0, 0.5, 0.25], [])
    """
    if places <= 0:
        return np.zeros(0)
    return np.cumprod(np.r_[1.0, np.full(places - 1, decay)])


class RankBatch:
    """The users to rank together, what each must not be shown, and the vocabulary."""

    def __init__(
        self,
        users: Sequence[UserState],
        excludes: Sequence[Collection[str]],
        vocab: Vocab,
        *,
        parent: tuple[RankBatch, np.ndarray] | None = None,
    ) -> None:
        if len(users) != len(excludes):
            raise ValueError("one exclude set per user")
        self.users = list(users)
        self.excludes = list(excludes)
        self.vocab = vocab
        self._parent = parent  # (the batch this is a part of, this part's users in it)
        #: ids of the items the other sources proposed to this batch's users, when a source
        #: that scores a catalogue in bulk is asked after them (the hybrid sets it with
        #: :meth:`set_pool`, which also keeps to whom each was proposed)
        self.pool: np.ndarray | None = parent[0].pool if parent is not None else None
        self._pool_pairs: tuple[np.ndarray, np.ndarray] | None = None
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None
        #: the excluded items, sorted, and each excluded pair's cell among them (see allowed)
        self._compact: tuple[np.ndarray, np.ndarray] | None = None
        #: :meth:`recent`'s answers, by depth
        self._recent: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, owners: Sequence[int]) -> RankBatch:
        """The batch of ``users[b]`` for ``b`` in ``owners`` (its exclusions worked out once)."""
        at = np.asarray(owners, dtype=np.int64)
        return RankBatch(
            [self.users[b] for b in owners],
            [self.excludes[b] for b in owners],
            self.vocab,
            parent=(self, at),
        )

    def _from_parent(self, owner: np.ndarray) -> np.ndarray:
        """The place in this part of each of the parent batch's ``owner`` (``-1``: not in it)."""
        batch, at = self._parent  # type: ignore[misc]
        local = np.full(len(batch), -1, dtype=np.int64)
        local[at] = np.arange(len(at))
        return local[owner]

    def excluded_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(owner, item id)`` of every excluded item, grouped by owner in increasing order."""
        if self._pairs is None:
            if self._parent is not None:
                owner, items = self._parent[0].excluded_pairs()
                mine = self._from_parent(owner)
                keep = np.flatnonzero(mine >= 0)
                order = keep[np.argsort(mine[keep], kind="stable")]
                self._pairs = mine[order], items[order]
            else:
                sizes = [len(e) for e in self.excludes]
                owner = np.repeat(np.arange(len(self.excludes), dtype=np.int64), sizes)
                self._pairs = owner, self.vocab.intern(x for e in self.excludes for x in e)
        return self._pairs

    def recent(self, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each user's ``depth`` most recent items (``UserState.recent``), latest first, as
        flat arrays grouped by user in increasing order: the user's place in the batch, the
        item's id and how many places back in the history it is (0: the latest). Worked out
        once per batch and depth, for the sources that read the users' histories (a Python
        loop over the items and a dictionary lookup each cost more than their ranking).

        >>> vocab = Vocab()
        >>> batch = RankBatch([UserState("u", recent=["a", "b", "c"]), UserState("v")],
        ...                   [(), ()], vocab)
        >>> owner, ids, back = batch.subset([0]).recent(2)
        >>> owner.tolist(), [vocab.names[i] for i in ids], back.tolist()
        ([0, 0], ['c', 'b'], [0, 1])
        """
        got = self._recent.get(depth)
        if got is None:
            if self._parent is not None:
                owner, ids, back = self._parent[0].recent(depth)
                mine = self._from_parent(owner)
                keep = np.flatnonzero(mine >= 0)
                keep = keep[np.argsort(mine[keep], kind="stable")]
                got = mine[keep], ids[keep], back[keep]
            else:
                tails = [user.recent[-depth:] for user in self.users] if depth > 0 else []
                sizes = np.fromiter(map(len, tails), dtype=np.int64, count=len(tails))
                ids = self.vocab.intern([x for tail in tails for x in reversed(tail)])
                owner = np.repeat(np.arange(len(tails), dtype=np.int64), sizes)
                back = np.arange(len(ids)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
                got = owner, ids, back
            self._recent[depth] = got
        return got

    def set_pool(self, owner: np.ndarray, items: np.ndarray) -> None:
        """What the other sources proposed: item id ``items[e]`` to ``users[owner[e]]``."""
        self._pool_pairs = (np.asarray(owner, dtype=np.int64), np.asarray(items, dtype=np.int64))
        self.pool = distinct(self._pool_pairs[1])

    def pool_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(owner, item id)`` of what the other sources proposed to this batch's users
        (:meth:`set_pool`; nothing when it was not set).

        >>> vocab = Vocab()
        >>> batch = RankBatch([UserState("u"), UserState("v")], [(), ()], vocab)
        >>> batch.set_pool(np.array([0, 1, 1]), vocab.intern(["x", "x", "y"]))
        >>> part = batch.subset([1])
        >>> [a.tolist() for a in part.pool_pairs()], part.pool.tolist()
        ([[0, 0], [0, 1]], [0, 1])
        """
        if self._parent is not None:
            owner, items = self._parent[0].pool_pairs()
            mine = self._from_parent(owner)
            keep = mine >= 0
            return mine[keep], items[keep]
        if self._pool_pairs is None:
            none = np.zeros(0, dtype=np.int64)
            return none, none
        return self._pool_pairs

    def excluded_rows(self, row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(owner, row)`` of the excluded items a source has rows for (``row_of``: id -> row,
        from :meth:`Vocab.row_of`), grouped by owner."""
        return _rows_of(*self.excluded_pairs(), row_of)

    def pool_rows(self, row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(owner, row)`` of the pool's pairs (:meth:`pool_pairs`) whose items a source has
        rows for (``row_of`` as in :meth:`excluded_rows`)."""
        return _rows_of(*self.pool_pairs(), row_of)

    def allowed(self, owner: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each ``(owner, item id)`` entry is not excluded: through a table of the
        ``user x item id`` cells when it is small (no sort); else of the ``user x excluded
        item`` cells, the entries' items placed among the excluded ones (a table as large as
        the vocabulary times the batch, built per call, cost more than the ranking of a large
        catalogue's sources that ask it).

        >>> vocab = Vocab()
        >>> batch = RankBatch([UserState("u"), UserState("v")], [{"a"}, {"b"}], vocab)
        >>> batch.allowed(np.array([0, 0, 1, 1]), vocab.intern(["a", "b", "a", "c"])).tolist()
        [False, True, True, True]
        """
        ex_owner, ex_items = self.excluded_pairs()  # first: it may add items to the vocabulary
        if not len(ex_owner):
            return np.ones(len(owner), dtype=bool)
        size = len(self.vocab)
        if len(self) * size <= 1 << 21:
            return ~np.isin(owner * size + items, ex_owner * size + ex_items, kind="table")
        if self._compact is None:
            kept = distinct(ex_items)
            self._compact = kept, ex_owner * len(kept) + np.searchsorted(kept, ex_items)
        kept, ex_cells = self._compact
        at = np.minimum(np.searchsorted(kept, items), len(kept) - 1)
        out = np.ones(len(owner), dtype=bool)
        maybe = np.flatnonzero(kept[at] == items)  # an item some user must not be shown
        cells = owner[maybe] * len(kept) + at[maybe]
        out[maybe] = ~np.isin(cells, ex_cells, kind="table")
        return out


def _no_reasons(entries: np.ndarray) -> list[list[str]]:
    return [[] for _ in range(len(entries))]


@dataclass
class Proposals:
    """One source's candidates for a batch: entry ``e`` proposes item id ``items[e]`` to user
    ``owner[e]`` with ``scores[e]``; ``explain(entries)`` gives the entries' ``because``."""

    owner: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    explain: Callable[[np.ndarray], list[list[str]]] = field(default=_no_reasons)

    @classmethod
    def empty(cls) -> Proposals:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, np.zeros(0))

    @classmethod
    def of_lists(cls, batch: RankBatch, lists: Sequence[Sequence[Candidate]]) -> Proposals:
        """Per-user candidate lists (what ``recommend`` returns) as proposals."""
        flat = [c for cands in lists for c in cands]
        owner = np.repeat(np.arange(len(lists), dtype=np.int64), [len(c) for c in lists])
        because = [c.because for c in flat]
        return cls(
            owner,
            batch.vocab.intern(c.item_id for c in flat),
            np.fromiter((c.score for c in flat), dtype=np.float64, count=len(flat)),
            lambda entries: [list(because[e]) for e in entries.tolist()],
        )

    def __len__(self) -> int:
        return len(self.owner)


def top_per_owner(
    owner: np.ndarray, scores: np.ndarray, n: int, *tiebreak: np.ndarray
) -> np.ndarray:
    """Entries of the ``n`` highest ``scores`` of each owner, best first, grouped by owner in
    increasing order; equal scores go to the lower ``tiebreak`` keys (first key first).

    >>> top_per_owner(np.array([1, 0, 0, 0]), np.array([5.0, 1.0, 3.0, 3.0]), 2,
    ...               np.array([0, 0, 9, 1])).tolist()
    [3, 2, 0]
    """
    if not len(owner) or n <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = (*reversed(tiebreak), -scores, owner)
    order = np.lexsort(keys)
    grouped = owner[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    place = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[place < n]


def top_per_owner_by_cand(
    owner: np.ndarray, cand: np.ndarray, scores: np.ndarray, n: int
) -> np.ndarray:
    """:func:`top_per_owner` with ties to the lower ``cand``, for ``owner`` grouped in increasing
    order: each owner's entries are first cut to those that score at least its ``n``-th best
    (:func:`cut_to_kth`), so only those few are sorted.

    >>> top_per_owner_by_cand(np.array([0, 0, 1]), np.array([2, 1, 0]), np.array([2.0, 2.0, 1.0]),
    ...                       1).tolist()
    [1, 2]
    """
    keep = cut_to_kth(owner, scores, n)
    return keep[top_per_owner(owner[keep], scores[keep], n, cand[keep])]


def cut_to_kth(owner: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The entries, for ``owner`` grouped in increasing order, that score at least their
    owner's ``k``-th best (every tie at the ``k``-th place kept), in entry order: each owner's
    ``k``-th best from a dense owners x entries grid (no sort) unless one owner has far more
    entries than the others (a sort then).

    >>> cut_to_kth(np.array([0, 0, 0, 1]), np.array([3.0, 1.0, 3.0, 0.5]), 1).tolist()
    [0, 2, 3]
    """
    if not len(owner) or k <= 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    counts = np.diff(np.r_[starts, len(owner)])
    widest = int(counts.max())
    if k >= widest:
        return np.arange(len(owner))
    group = np.repeat(np.arange(len(starts)), counts)
    if len(starts) * widest <= 4 * len(owner) + (1 << 16):
        # negated, padded with +inf and partitioned in place: no copies of the grid
        grid = np.full((len(starts), widest), np.inf)
        grid[group, np.arange(len(owner)) - starts[group]] = -scores
        grid.partition(k - 1, axis=1)
        kth = -grid[:, k - 1]
        return np.flatnonzero(scores >= kth[group])
    order = np.lexsort((-scores, owner))
    kth = scores[order[starts + np.minimum(k, counts) - 1]]
    return np.sort(order[scores[order] >= kth[group]])


def sum_per_owner(
    owner: np.ndarray, cand: np.ndarray, values: np.ndarray, n_owners: int, n_cands: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``values`` summed per ``(owner, cand)`` pair, each pair's values in entry order (so the
    sums are the ones a per-user loop adds up). Returns the pairs (grouped by owner, candidates
    in increasing order), their sums, and each entry's pair.

    >>> o, c, s, at = sum_per_owner(np.array([1, 0, 1]), np.array([2, 2, 2]), np.ones(3), 2, 3)
    >>> o.tolist(), c.tolist(), s.tolist(), at.tolist()
    ([0, 1], [2, 2], [1.0, 2.0], [1, 0, 1])
    """
    cells = n_owners * n_cands
    if _dense_fits(cells, len(owner)):  # no sort
        flat = owner * n_cands + cand
        sums = np.bincount(flat, weights=values, minlength=cells)
        touched = np.zeros(cells, dtype=bool)
        touched[flat] = True
        where = np.flatnonzero(touched)
        place = np.empty(cells, dtype=np.int64)
        place[where] = np.arange(len(where))
        owners, cands = np.divmod(where, n_cands)
        return owners, cands, sums[where], place[flat]
    keys, inverse = unique_inverse((owner << KEY_SHIFT) | cand)
    sums = np.bincount(inverse, weights=values, minlength=len(keys))
    return keys >> KEY_SHIFT, keys & ((1 << KEY_SHIFT) - 1), sums, inverse


#: Cells of one block of :func:`top_of_sums`'s dense grid (2 MB of float64).
_GRID_BLOCK = 1 << 18


def _grouped(owner: np.ndarray) -> bool:
    """Whether ``owner`` is in increasing order (grouped by owner)."""
    return bool(len(owner) < 2 or (owner[1:] >= owner[:-1]).all())


def _dense_fits(cells: int, entries: int) -> bool:
    """Whether ``entries`` are summed through a dense grid of ``cells`` (at most 16 cells an
    entry, or 65,536, and never more than 2 ** 25) rather than through their distinct pairs."""
    return cells <= max(16 * entries, 1 << 16) and cells <= 1 << 25


def top_of_sums(
    owner: np.ndarray,
    cand: np.ndarray,
    values: np.ndarray,
    n_owners: int,
    n_cands: int,
    n: int,
    excluded: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``values`` summed per ``(owner, cand)`` pair in entry order (the sums a per-user loop
    adds up), the ``excluded`` pairs and those whose sum is not finite and positive left out,
    and each owner's ``n`` best pairs, best first, equal sums to the lower ``cand``, grouped by
    owner in increasing order. Returns the chosen pairs' owners, candidates and sums, and a key
    for each entry and each chosen pair, equal when the entry is one of the pair's (increasing
    with ``(owner, cand)``). Through a dense owners x candidates grid when it is small
    (:func:`top_dense` on its rows: no sort of the pairs), else through the distinct pairs.

    >>> o, c, s, entry, chosen = top_of_sums(np.array([0, 0, 0, 1]), np.array([2, 1, 2, 0]),
    ...     np.array([1.0, 1.5, 1.0, 3.0]), 2, 3, 1, (np.array([1]), np.array([0])))
    >>> o.tolist(), c.tolist(), s.tolist(), entry.tolist(), chosen.tolist()
    ([0], [2], [2.0], [2, 1, 2, 3], [2])
    """
    ex_owner, ex_cand = excluded
    cells = n_owners * n_cands
    if _dense_fits(cells, len(owner)) and np.isfinite(values).all():
        flat = owner * n_cands + cand
        ex_flat = ex_owner * n_cands + ex_cand
        # a block of owners at a time (owners in increasing order): each grid stays in the
        # cache between its passes (the sums, the exclusions, the top n), a quarter cheaper
        # than one grid for a warm worker's batch (~480 users x 7,400 items)
        step = max(1, _GRID_BLOCK // max(1, n_cands))
        whole = step >= n_owners or not _grouped(owner)  # one grid
        bounds = [0, n_owners] if whole else [*range(0, n_owners, step), n_owners]
        at = [0, len(owner)] if whole else np.searchsorted(owner, bounds).tolist()
        parts = []
        for b, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            base = lo * n_cands
            grid = np.bincount(
                flat[at[b] : at[b + 1]] - base,
                weights=values[at[b] : at[b + 1]],
                minlength=(hi - lo) * n_cands,
            )
            banned = ex_flat if whole else ex_flat[(ex_owner >= lo) & (ex_owner < hi)]
            grid[banned - base] = 0.0
            grid = grid.reshape(hi - lo, n_cands)
            cols = top_dense(grid, n)
            sums = np.take_along_axis(grid, cols, axis=1)
            keep = sums > 0
            rows = np.broadcast_to(np.arange(lo, hi)[:, None], cols.shape)[keep]
            parts.append((rows, cols[keep], sums[keep]))
        rows, chosen, sums = (np.concatenate(x) for x in zip(*parts, strict=True))
        return rows, chosen, sums, flat, rows * n_cands + chosen
    k_owner, k_cand, sums, inverse = sum_per_owner(owner, cand, values, n_owners, n_cands)
    seen = np.isin(  # by a table of owner x candidate cells when it is small
        k_owner * n_cands + k_cand,
        ex_owner * n_cands + ex_cand,
        kind="table" if cells <= 1 << 24 else "sort",
    )
    live = np.flatnonzero(np.isfinite(sums) & (sums > 0) & ~seen)
    top = live[top_per_owner_by_cand(k_owner[live], k_cand[live], sums[live], n)]
    return k_owner[top], k_cand[top], sums[top], inverse, top


def distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` for a 1-d integer array, by one sort: numpy 2's ``np.unique``
    hashes integers, ~9x slower here on the 20,000 item ids of a batch's pool.

    >>> distinct(np.array([5, 3, 5, 1])).tolist()
    [1, 3, 5]
    """
    ordered = np.sort(values)
    return ordered[run_starts(ordered)]


def run_starts(ordered: np.ndarray) -> np.ndarray:
    """Whether each entry of a sorted array differs from the one before (the first does)."""
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def runs_of(owner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For entries grouped by ``owner`` in increasing order (non-empty): the distinct owners,
    each entry's owner among them and its place in its owner's run: where each entry goes in
    an owners x places matrix (padded per owner).

    >>> [a.tolist() for a in runs_of(np.array([2, 2, 5, 7, 7, 7]))]
    [[2, 5, 7], [0, 0, 1, 2, 2, 2], [0, 1, 0, 0, 1, 2]]
    """
    first = run_starts(owner)
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    return owner[starts], group, np.arange(len(owner)) - starts[group]


def _rows_of(
    owner: np.ndarray, items: np.ndarray, row_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(owner, item id)`` pairs whose items have a row in ``row_of``, as ``(owner, row)``."""
    known = items < len(row_of)
    owner, rows = owner[known], row_of[items[known]]
    has = rows >= 0
    return owner[has], rows[has]


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for a 1-d array, with a stable sort, which
    runs faster on the partly ordered keys of a batch (grouped by owner): 1.4-1.7x here.

    >>> [a.tolist() for a in unique_inverse(np.array([5, 3, 5, 1]))]
    [[1, 3, 5], [2, 1, 2, 0]]
    """
    perm = np.argsort(values, kind="stable")
    ordered = values[perm]
    first = run_starts(ordered)
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[perm] = np.cumsum(first) - 1
    return ordered[first], inverse


def name_rank(vocab: Vocab, items: np.ndarray) -> np.ndarray:
    """For each item id, a key that orders ``items`` by name, as a per-user sort by
    ``(-score, item_id)`` breaks ties: its place among the vocabulary's names
    (:meth:`Vocab.name_order`).

    >>> vocab = Vocab()
    >>> name_rank(vocab, vocab.intern(["b", "a", "c", "a"])).tolist()
    [1, 0, 2, 0]
    """
    return vocab.name_order()[items]


def candidate_rows(
    batch: RankBatch, row_of: np.ndarray, head: np.ndarray, size: int, limit: int
) -> np.ndarray | None:
    """The rows a source that scores its whole catalogue in bulk (a factor model) scores for
    ``batch`` once the catalogue has more than ``limit`` rows: its ``head`` rows (its own best
    guesses, e.g. the most popular items) and the rows of the batch's pool (what the other
    sources proposed), sorted; None (every row) for a catalogue of at most ``limit`` rows.
    The two-stage cut: an item outside both is not proposed by this source.

    >>> vocab = Vocab()
    >>> batch = RankBatch([UserState("u")], [()], vocab)
    >>> batch.set_pool(np.array([0]), vocab.intern(["c"]))
    >>> rows = ["a", "b", "c", "d"]
    >>> candidate_rows(batch, vocab.row_of(rows), np.array([0]), 4, 2).tolist()
    [0, 2]
    >>> candidate_rows(batch, vocab.row_of(rows), np.array([0]), 4, 4) is None
    True
    """
    if size <= limit:
        return None
    pool = batch.pool if batch.pool is not None else np.zeros(0, dtype=np.int64)
    pooled = row_of[pool[pool < len(row_of)]]
    rows = np.concatenate([head[head < size], pooled[(pooled >= 0) & (pooled < size)]])
    return distinct(rows)


class OwnPool:
    """Which of the rows a source scored in bulk past the two-stage cut (:func:`candidate_rows`:
    its ``head`` and the batch's pool) each of its users may be proposed: a head row, or one
    the other sources proposed to that user. The pool is scored for the whole batch at once
    (one product), but what was proposed to others in the batch is not the user's: so each
    user's list is the one the user is ranked alone, whoever shares the batch.

    ``users``: the batch positions the source ranks (in its order); ``col_of``: each row's
    column among the scored rows (``-1``: not scored).

    >>> vocab = Vocab()
    >>> batch = RankBatch([UserState("u"), UserState("v")], [(), ()], vocab)
    >>> batch.set_pool(np.array([0, 1]), vocab.intern(["b", "c"]))
    >>> rows = ["a", "b", "c"]
    >>> own = OwnPool(batch, [0, 1], vocab.row_of(rows), np.array([0, 1, 2]), np.array([0]))
    >>> own.blocked(0, 2).astype(int).tolist()
    [[0, 0, 1], [0, 1, 0]]
    """

    def __init__(
        self,
        batch: RankBatch,
        users: Sequence[int],
        row_of: np.ndarray,
        col_of: np.ndarray,
        head: np.ndarray,
    ) -> None:
        local = np.full(len(batch), -1, dtype=np.int64)
        local[np.asarray(users, dtype=np.int64)] = np.arange(len(users))
        owner, rows = batch.pool_rows(row_of)
        at = local[owner]
        ok = (at >= 0) & (rows < len(col_of))
        at, cols = at[ok], col_of[rows[ok]]
        ok = cols >= 0
        self._at, self._cols = at[ok], cols[ok]
        head_cols = col_of[head[(head >= 0) & (head < len(col_of))]]
        width = int(col_of.max()) + 1 if len(col_of) else 0
        self._others = np.ones(width, dtype=bool)  # a row of a block before the user's own
        self._others[head_cols[head_cols >= 0]] = False

    def blocked(self, lo: int, hi: int) -> np.ndarray:
        """``[x - lo, c]`` for the users at places ``lo`` to ``hi``: whether the row in column
        ``c`` is kept from that user (proposed only to others)."""
        out = np.broadcast_to(self._others, (hi - lo, len(self._others))).copy()
        mine = (self._at >= lo) & (self._at < hi)
        out[self._at[mine] - lo, self._cols[mine]] = False
        return out


def bulk_rows(
    batch: RankBatch,
    row_items: Sequence[str | None],
    users: Sequence[int],
    head: np.ndarray,
    size: int,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, OwnPool | None]:
    """What a source that scores its catalogue in bulk (a factor model with rows
    ``row_items``, ``size`` of them live) needs to score ``batch.users[b]`` for ``b`` in
    ``users``: the batch id of each of its rows, the rows it scores (:func:`candidate_rows`:
    all of them, or past ``limit`` its ``head`` and the pool), the excluded pairs as
    ``(place in users, column of the scored rows)`` (``-1`` where a pair falls outside), and
    past the cut which scored rows each user may be proposed (:class:`OwnPool`; None: all).

    >>> vocab = Vocab()
    >>> batch = RankBatch([UserState("u"), UserState("v")], [(), {"b"}], vocab)
    >>> ids, scored, ex_at, ex_cols, own = bulk_rows(
    ...     batch, ["a", "b"], [1], np.array([0]), 2, 10)
    >>> [vocab.names[i] for i in ids], scored.tolist(), ex_at.tolist(), ex_cols.tolist(), own
    (['a', 'b'], [0, 1], [0], [1], None)
    """
    ids = batch.vocab.rows(row_items)
    row_of = batch.vocab.row_of(row_items)
    local = np.full(len(batch), -1, dtype=np.int64)
    local[np.asarray(users, dtype=np.int64)] = np.arange(len(users))
    ex_owner, ex_rows = batch.excluded_rows(row_of)
    scored = candidate_rows(batch, row_of, head, size, limit)
    cut = scored is not None
    if scored is None:
        scored = np.arange(size)
    col_of = np.full(size, -1, dtype=np.int64)
    col_of[scored] = np.arange(len(scored))
    own = OwnPool(batch, users, row_of, col_of, head) if cut else None
    return ids, scored, local[ex_owner], col_of[ex_rows], own


def top_dense(scores: np.ndarray, n: int) -> np.ndarray:
    """Columns of the ``n`` highest scores of each row of a 2-d array, best first, equal
    scores by column, also at the ``n``-th place (:func:`models.common.top_rows` on every row
    at once): each row's ``n`` best (:func:`_top_unordered`), then ordered.

    >>> top_dense(np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]]), 2).tolist()
    [[1, 2], [2, 0]]
    """
    rows, cols = scores.shape
    m = min(n, cols)
    if m <= 0 or rows == 0:
        return np.zeros((rows, 0), dtype=np.int64)
    if m == cols:
        top = np.tile(np.arange(m), (rows, 1))
    elif np.isnan(scores).any():  # NaN ranks below everything, as -NaN does in a sort of -scores
        top = np.argpartition(-scores, m - 1, axis=1)[:, :m]
    else:
        top = _top_unordered(scores, m)
    top = np.sort(top, axis=1)  # by column, so that a stable sort by score breaks ties by it
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _top_unordered(
    scores: np.ndarray, m: int, *, padded: bool = False, cut: bool = True
) -> np.ndarray:
    """Columns of each row's ``m`` best (no NaN; ``0 < m < columns``), in no order, ties at
    the ``m``-th place by column. A wide array is first ``cut`` (:func:`_cut_wide`), so that the
    partition runs on a few times ``m`` columns per row. One ``argpartition``: from the top
    with no negated copy, unless most scores are zeros or the rows are ``padded`` with
    ``-inf`` (numpy's introselect from the top slows down on many equal values below the cut,
    x10 at 90 % zeros; from the bottom it does not)."""
    rows, cols = scores.shape
    if cut and cols >= 8 * m:
        return _cut_wide(scores, m)
    sample = scores[:: max(1, rows // 8)]
    if padded or np.count_nonzero(sample == 0) * 4 > sample.size:
        top = np.argpartition(-scores, m - 1, axis=1)[:, :m]
        kth = scores[np.arange(rows), top[:, m - 1]]  # the m-th best of each row
    else:
        top = np.argpartition(scores, cols - m, axis=1)[:, cols - m :]
        kth = scores[np.arange(rows), top[:, 0]]
    tied = scores == kth[:, None]
    left_out = np.flatnonzero(tied.sum(axis=1) > np.take_along_axis(tied, top, axis=1).sum(1))
    if len(left_out):  # those rows: all above the m-th best, then its ties by column
        sub, cut = scores[left_out], kth[left_out, None]
        above, level = sub > cut, sub == cut
        need = m - above.sum(axis=1)
        chosen = above | (level & (np.cumsum(level, axis=1) <= need[:, None]))
        top[left_out] = np.nonzero(chosen)[1].reshape(len(left_out), m)
    return top


def _cut_wide(scores: np.ndarray, m: int) -> np.ndarray:
    """:func:`_top_unordered` of a wide array (at least ``8 m`` columns): each row's scores at
    or above a threshold, the ``q``-th best of every ``step``-th column (about ``2 m`` of the
    row), gathered left-aligned into a narrow array (``-inf`` after them, column order kept)
    whose ``m`` best are the row's. A row where the threshold keeps fewer than ``m`` or more
    than ``8 m`` (many ties) takes the whole row."""
    rows, cols = scores.shape
    step = max(1, cols // (4 * m))
    sample = scores[:, ::step]
    q = min(sample.shape[1], -(-2 * m // step))
    threshold = np.partition(sample, sample.shape[1] - q, axis=1)[:, sample.shape[1] - q]
    mask = scores >= threshold[:, None]
    count = np.count_nonzero(mask, axis=1)
    good = (count >= m) & (count <= 8 * m) & (threshold > -np.inf)
    top = np.empty((rows, m), dtype=np.int64)
    rest = np.flatnonzero(~good)
    if len(rest):
        top[rest] = _top_unordered(scores[rest], m, cut=False)
    kept = np.flatnonzero(good)
    if len(kept):
        if len(rest):
            mask, count = mask[kept], count[kept]
        row, col = np.divmod(np.flatnonzero(mask), cols)  # by row, then by column
        starts = np.r_[0, np.cumsum(count)[:-1]]
        narrow = np.full((len(kept), int(count.max())), -np.inf)
        narrow[row, np.arange(len(row)) - starts[row]] = scores[kept[row], col]
        top[kept] = col[starts[:, None] + _top_unordered(narrow, m, padded=True, cut=False)]
    return top


@dataclass
class Source:
    """One weighted source's proposals in a blend, with each user's weight for it and its
    place in the user's phase (sources are summed, and named, in that order)."""

    name: str
    proposals: Proposals
    weight: np.ndarray  # per user of the batch (0: not weighted for that user)
    rank: np.ndarray  # per user: the source's place in the user's phase
    explains: bool = True  # its proposals carry reasons (``Recommender.explains``)


def blend(batch: RankBatch, sources: Sequence[Source], k: int) -> list[list[Candidate]]:
    """Each source's scores divided by the user's best score from it, times the user's weight
    for it, summed per item; the ``k`` best items per user (ties by item id), each with the
    sources that proposed it (in the user's phase order) and the ``because`` of the first of
    them that ``explains``: one source's reasons, only those asked of it."""
    n_users = len(batch)
    out: list[list[Candidate]] = [[] for _ in range(n_users)]
    if k <= 0 or not sources:
        return out
    owners, items, parts, ranks, which, entries = [], [], [], [], [], []
    for s, src in enumerate(sources):
        p = src.proposals
        if not len(p):
            continue
        finite = np.isfinite(p.scores)
        best = _best_per_owner(p.owner, np.where(finite, p.scores, -np.inf), n_users)[p.owner]
        keep = np.flatnonzero(finite & (p.scores > 0) & (best > 0))
        o = p.owner[keep]
        owners.append(o)
        items.append(p.items[keep])
        parts.append(src.weight[o] * p.scores[keep] / best[keep])
        ranks.append(src.rank[o])
        which.append(np.full(len(keep), s, dtype=np.int64))
        entries.append(keep)
    if not owners:
        return out
    rank = np.concatenate(ranks)
    if rank.max() < 256:  # a radix sort: phases weigh a few sources
        rank = rank.astype(np.uint8)
    order = np.argsort(rank, kind="stable")  # each item's parts are summed in phase order
    owner = np.concatenate(owners)[order]
    item = np.concatenate(items)[order]
    part = np.concatenate(parts)[order]
    which_e = np.concatenate(which)[order]
    entry = np.concatenate(entries)[order]
    keys, inverse = unique_inverse((owner << KEY_SHIFT) | item)
    score = np.bincount(inverse, weights=part, minlength=len(keys))
    key_owner = keys >> KEY_SHIFT
    key_item = keys & ((1 << KEY_SHIFT) - 1)
    # the k best of each user, equal scores by item id (name), as a per-user sort would
    best = top_per_owner_by_name(key_owner, key_item, score, k, batch.vocab)
    if not len(best):
        return out
    # the sources and reasons behind each chosen item, in phase order: the entries of the
    # chosen pairs, grouped by pair (each pair's entries in phase order)
    picked = np.zeros(len(keys), dtype=bool)
    picked[best] = True
    sel = np.flatnonzero(picked[inverse])
    sel = sel[np.argsort(inverse[sel], kind="stable")]
    sel_which, sel_key = which_e[sel], inverse[sel]
    # each chosen pair's first entry whose source explains: the only reasons asked for
    explaining = np.flatnonzero(np.asarray([src.explains for src in sources])[sel_which])
    lead = explaining[run_starts(sel_key[explaining])]
    why: list[list[str]] = [[]] * len(sel)
    for s in distinct(sel_which[lead]).tolist():
        mine = lead[sel_which[lead] == s]
        for at, reasons in zip(
            mine.tolist(), sources[s].proposals.explain(entry[sel[mine]]), strict=True
        ):
            why[at] = reasons
    names = [src.name for src in sources]
    named = [names[s] for s in sel_which.tolist()]
    lo = np.searchsorted(sel_key, best, side="left").tolist()
    hi = np.searchsorted(sel_key, best, side="right").tolist()
    names_of = batch.vocab.names
    chain = itertools.chain.from_iterable
    ranked = [
        Candidate(names_of[i], sc, named[a:z], list(chain(why[a:z])))
        for i, sc, a, z in zip(key_item[best].tolist(), score[best].tolist(), lo, hi, strict=True)
    ]
    # best comes grouped by user: each user's run of it is their list
    best_owner = key_owner[best]
    starts = np.flatnonzero(np.r_[True, best_owner[1:] != best_owner[:-1]])
    ends = np.r_[starts[1:], len(best)]
    for b, a, z in zip(best_owner[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        out[b] = ranked[a:z]
    return out


def _best_per_owner(owner: np.ndarray, scores: np.ndarray, n_owners: int) -> np.ndarray:
    """Each owner's highest score (``-inf`` for none): a reduction per run of equal owners when
    they come grouped (as sources propose them), ``np.maximum.at`` otherwise."""
    top = np.full(n_owners, -np.inf)
    if len(owner) and np.all(owner[1:] >= owner[:-1]):
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        top[owner[starts]] = np.maximum.reduceat(scores, starts)
    else:
        np.maximum.at(top, owner, scores)
    return top


def top_per_owner_by_name(
    owner: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int, vocab: Vocab
) -> np.ndarray:
    """:func:`top_per_owner` of ``scores`` with ties by item name, for ``owner`` grouped in
    increasing order: each owner's entries are first cut to those that score at least its
    ``k``-th best (:func:`cut_to_kth`, ties kept), so only those few are ranked by name."""
    keep = cut_to_kth(owner, scores, k)
    best = top_per_owner(owner[keep], scores[keep], k, name_rank(vocab, items[keep]))
    return keep[best]


def weights_table(
    phases: Sequence[Mapping[str, float]], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per user, each named source's weight and its place in the user's phase order."""
    weight = np.zeros((len(names), len(phases)))
    rank = np.zeros((len(names), len(phases)), dtype=np.int64)
    col = {name: s for s, name in enumerate(names)}
    for b, weights in enumerate(phases):
        for place, (name, w) in enumerate(weights.items()):
            s = col.get(name)
            if s is not None:
                weight[s, b], rank[s, b] = w, place
    return weight, rank
