"""What the sources share: item rows, forward decay, top-k. Each source keeps only its maths.

*Item rows.* A source that scores items in numpy gives each item id the next row of its
arrays (:func:`add_row`); arrays grow by doubling (:func:`grown`); a forgotten item's row is
marked dead (:func:`drop_row`) and, once dead rows pile up, the live ones are renumbered
(:func:`live_rows`).

*Forward decay.* An event at ``t`` weighs ``2 ** ((t - t0) / half_life)`` against a fixed
reference ``t0``, so comparing stored sums compares exponentially decayed sums without touching
every entry on each event. :func:`forward_boost` returns that boost and, before it could
overflow, has the source rescale what it stores and moves ``t0``; :func:`decayed_counts`
rescales a dict of counts and drops the evidence that has decayed below :data:`FLOOR`.

*Top-k*, best first: :func:`top_rows` over a numpy array (``argpartition``, then a sort of the
``k`` kept), :func:`top_items` over ``(item, score)`` pairs (a heap); ties go to the lower row
or item id.

The helpers work on the arrays and dicts a source already holds (and pickles): a source's
attributes, and so its checkpoints, are the same as before they were shared.

>>> index, items = {}, []
>>> scores = np.zeros(2)
>>> for item, score in [("a", 1.0), ("b", 3.0), ("c", 3.0)]:
...     row = add_row(index, items, item)
...     scores = grown(scores, row)
...     scores[row] = score
>>> [items[r] for r in top_rows(scores, 2)], len(scores)
(['b', 'c'], 4)
>>> top_items([("y", 1.0), ("x", 2.0), ("w", 1.0)], k=2)
[('x', 2.0), ('w', 1.0)]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, MutableSequence, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from models.base import UserState

__all__ = [
    "FLOOR",
    "MAX_WEIGHT",
    "RESCALE_EXPONENT",
    "add_row",
    "ban",
    "context_items",
    "decay_factor",
    "decayed_counts",
    "drop_row",
    "forward_boost",
    "grown",
    "live_rows",
    "positive_evidence",
    "top_items",
    "top_rows",
    "top_servable",
]

K = TypeVar("K", bound=Hashable)

#: One event never counts more than this in the count-based sources, whatever the caller passes.
MAX_WEIGHT = 10.0
#: Decayed evidence below this (one event now weighs 1) is dropped when it is rescaled.
FLOOR = 1e-12
#: Stored sums are rescaled once the newest event's boost passes ``2 ** RESCALE_EXPONENT``.
RESCALE_EXPONENT = 60.0


def positive_evidence(weight: float, ts: float) -> bool:
    """Whether an event adds evidence to a count: a finite weight above 0 at a finite time.

    >>> positive_evidence(1.0, 0.0), positive_evidence(-1.0, 0.0), positive_evidence(1.0, math.nan)
    (True, False, False)
    """
    return weight > 0 and math.isfinite(weight) and math.isfinite(ts)


# -- item rows -----------------------------------------------------------------------------


def add_row(index: dict[str, int], items: MutableSequence[Any], item_id: str) -> int:
    """Give ``item_id`` the next row (``index[item_id]``, ``items[row]``) and return it."""
    row = index[item_id] = len(items)
    items.append(item_id)
    return row


def grown(
    array: np.ndarray, row: int, *, fill: float = 0.0, axis: int = 0, minimum: int = 1
) -> np.ndarray:
    """``array`` itself if it has a slot ``row`` along ``axis``; else a copy grown by doubling
    (to at least ``minimum`` slots) until it has, the new slots holding ``fill``.

    >>> a = grown(np.ones((1, 2)), 2, axis=1)
    >>> a.tolist(), grown(a, 3, axis=1) is a, grown(np.zeros(0), 0, minimum=16).shape
    ([[1.0, 1.0, 0.0, 0.0]], True, (16,))
    """
    size = array.shape[axis]
    if row < size:
        return array
    new = max(minimum, 2 * size)
    while new <= row:
        new *= 2
    shape = list(array.shape)
    shape[axis] = new - size
    return np.concatenate([array, np.full(shape, fill, dtype=array.dtype)], axis=axis)


def drop_row(
    index: dict[str, int], items: MutableSequence[str | None], alive: np.ndarray, item_id: str
) -> int | None:
    """Mark ``item_id``'s row dead (``alive`` false, ``items`` None, out of ``index``); its row,
    or None when the item has none. Rows are not reused: :func:`live_rows` renumbers them."""
    row = index.pop(item_id, None)
    if row is not None:
        alive[row] = False
        items[row] = None
    return row


def live_rows(items: Sequence[str | None]) -> tuple[np.ndarray, list[str | None], dict[str, int]]:
    """The rows that still hold an item, and the renumbered ``(items, index)`` without the rest.

    >>> keep, items, index = live_rows(["a", None, "c"])
    >>> keep.tolist(), items, index
    ([0, 2], ['a', 'c'], {'a': 0, 'c': 1})
    """
    keep = np.asarray([r for r, item in enumerate(items) if item is not None], dtype=np.int64)
    live: list[str | None] = [item for item in items if item is not None]
    return keep, live, {item: r for r, item in enumerate(live) if item is not None}


# -- forward decay -------------------------------------------------------------------------


def forward_boost(
    t0: float | None,
    now: float,
    half_life: float,
    rescale: Callable[[float], None],
    *,
    min_exponent: float = -RESCALE_EXPONENT,
) -> tuple[float, float]:
    """The forward-decay boost of an event at ``now`` and the reference time to keep.

    ``t0`` is None before the first event (which becomes the reference). When the exponent
    ``(now - t0) / half_life`` passes :data:`RESCALE_EXPONENT`, ``rescale(factor)`` is asked
    to multiply everything the source stores by ``factor`` (relative order and ratios are
    unchanged) and ``now`` becomes the reference. A late event's exponent is floored at
    ``min_exponent``.

    >>> stored = [8.0]
    >>> forward_boost(None, 5.0, 1.0, lambda f: None)
    (1.0, 5.0)
    >>> forward_boost(0.0, 3.0, 1.0, lambda f: None)
    (8.0, 0.0)
    >>> def rescale(factor: float) -> None:
    ...     stored[0] *= factor
    >>> boost, t0 = forward_boost(0.0, 64.0, 1.0, rescale)
    >>> boost, t0, stored[0] == 8.0 * 2.0**-64
    (1.0, 64.0, True)
    """
    if t0 is None:
        t0 = now
    exponent = (now - t0) / half_life
    if exponent > RESCALE_EXPONENT:  # rescale before floats overflow
        rescale(2.0 ** (-exponent))
        t0, exponent = now, 0.0
    return float(2.0 ** max(exponent, min_exponent)), t0


def decay_factor(t0: float, now: float, half_life: float) -> float:
    """What a boost given at ``t0`` is worth at ``now`` (``2 ** -((now - t0) / half_life)``).

    >>> decay_factor(0.0, 2.0, 1.0)
    0.25
    """
    return float(2.0 ** (-(now - t0) / half_life))


def decayed_counts(counts: Mapping[K, float], factor: float) -> dict[K, float]:
    """``counts`` times ``factor``, without the entries that fall to :data:`FLOOR` or below.

    >>> decayed_counts({"a": 4.0, "b": 1e-12}, 0.5)
    {'a': 2.0}
    """
    return {key: value * factor for key, value in counts.items() if value * factor > FLOOR}


# -- top-k ---------------------------------------------------------------------------------


def top_rows(
    scores: np.ndarray, k: int, *, ties: Literal["row", "partition"] = "row"
) -> np.ndarray:
    """Rows of the ``k`` highest ``scores``, best first: ``argpartition`` keeps ``k`` rows in
    O(n), only those are sorted. Equal scores are ordered by row (``ties="row"``), or as the
    partition left them (``"partition"``, a stable sort: what :class:`DecayedPopularity
    <models.popularity.DecayedPopularity>` ranks by).

    >>> top_rows(np.array([1.0, 3.0, 2.0, 3.0]), 3).tolist()
    [1, 3, 2]
    >>> top_rows(np.array([1.0]), 0).tolist()
    []
    """
    m = min(k, len(scores))
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, m - 1)[:m] if m < len(scores) else np.arange(m)
    if ties == "row":
        return top[np.lexsort((top, -scores[top]))]
    return top[np.argsort(-scores[top], kind="stable")]


def top_servable(
    scores: np.ndarray,
    k: int,
    alive: np.ndarray,
    index: Mapping[str, int],
    exclude: Iterable[str],
) -> np.ndarray:
    """Rows of the ``k`` highest finite ``scores`` (by :func:`top_rows`), never a dead row
    (``alive`` false) nor an excluded item (``index`` gives the rows). ``scores`` holds a
    score per row and is masked in place (``-inf``).

    >>> scores = np.array([3.0, 2.0, np.nan, 1.0])
    >>> alive = np.array([True, True, True, False])
    >>> top_servable(scores, 5, alive, {"a": 0}, ["a"]).tolist()
    [1]
    """
    scores[~alive[: len(scores)] | ~np.isfinite(scores)] = -np.inf
    ban(scores, index, exclude)
    return top_rows(scores, min(k, int(np.isfinite(scores).sum())))


def top_items(scores: Iterable[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """The ``k`` ``(item, score)`` pairs with the highest scores, best first, ties to the lower
    item id (a heap: O(n log k))."""
    return heapq.nsmallest(k, scores, key=_best_first)


def _best_first(pair: tuple[str, float]) -> tuple[float, str]:
    return -pair[1], pair[0]


def ban(
    scores: np.ndarray, index: Mapping[str, int], items: Iterable[str], value: float = -np.inf
) -> None:
    """Set the score of each of ``items`` that ``index`` gives a row to ``value``, in place.

    >>> scores = np.ones(3)
    >>> ban(scores, {"a": 0, "c": 2}, {"a", "z"})
    >>> scores.tolist()
    [-inf, 1.0, 1.0]
    """
    rows = [index[item] for item in items if item in index]
    if rows:
        scores[rows] = value


def context_items(user: UserState, n: int) -> list[str]:
    """The last ``n`` distinct items of the session (of the history if none), newest first.

    >>> user = UserState("u", session_items=["a", "b", "a", "c"])
    >>> context_items(user, 2), context_items(user, 5)
    (['c', 'a'], ['c', 'a', 'b'])
    """
    source = user.session_items or user.recent
    out: list[str] = []
    for item in reversed(source):
        if item not in out:
            out.append(item)
            if len(out) >= n:
                break
    return out
