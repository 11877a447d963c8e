"""Neighbour rows: per item, the indices of the items counted with it and their counts.

Item CF and EASE count co-occurrences one event at a time and read whole rows when they rank:
a row is kept as two growing arrays (``array.array``: the neighbours' indices and their
counts, in the order they were first counted) and a dict from neighbour to its place, so an
update is a dict lookup and an array's add (about twice a dict of counts' cost), while reading
many rows at once (:meth:`NeighbourRows.gather`) joins array buffers instead of converting each
entry of a dict to a number (item CF's proposals spent half their time on that once its rows
had filled).

>>> rows = NeighbourRows()
>>> rows.extend_to(3)
>>> for i, j, w in [(0, 2, 1.5), (0, 1, 1.0), (0, 2, 0.5)]:
...     sizes = rows.add_pair(i, j, w)  # both directions
>>> sizes, rows.keys(0).tolist(), rows.values(0).tolist(), rows.get(2, 0), rows.size(1)
((2, 1), [2, 1], [2.0, 1.0], 2.0, 1)
>>> sizes, keys, values = rows.gather([1, 0])
>>> sizes.tolist(), keys.tolist(), values.tolist()
([1, 2], [0, 2, 1], [1.0, 2.0, 1.0])
>>> rows.keep(0, [1]); rows.keys(0).tolist(), rows.get(0, 2)
([1], 0.0)
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["NeighbourRows"]


class NeighbourRows:
    """Rows of ``(neighbour index, count)`` entries, one row per item index.

    Arrays handed out are copies (a NumPy view of an ``array.array`` would stop it growing).
    """

    def __init__(self) -> None:
        self._at: list[dict[int, int]] = []  # row -> neighbour -> its place in the arrays
        self._keys: list[array] = []  # row -> neighbour indices ('i': 4 bytes, below 2**31)
        self._vals: list[array] = []  # row -> counts ('d')

    @classmethod
    def of_dicts(cls, rows: Iterable[Mapping[int, float]]) -> NeighbourRows:
        """Rows from dicts of ``neighbour -> count`` (in their order), e.g. an old checkpoint's."""
        out = cls()
        for row in rows:
            out._append(list(row), list(row.values()))
        return out

    def __len__(self) -> int:
        return len(self._at)

    def __getstate__(self) -> dict[str, Any]:
        return {"_keys": self._keys, "_vals": self._vals}  # the places are rebuilt on load

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys, self._vals = state["_keys"], state["_vals"]
        self._at = [{j: p for p, j in enumerate(keys)} for keys in self._keys]

    def extend_to(self, n: int) -> None:
        """Empty rows up to ``n`` rows in all."""
        while len(self._at) < n:
            self._append([], [])

    def _append(self, keys: list[int], values: list[float]) -> None:
        self._at.append({j: p for p, j in enumerate(keys)})
        self._keys.append(array("i", keys))
        self._vals.append(array("d", values))

    def size(self, i: int) -> int:
        return len(self._keys[i])

    def add_pair(self, i: int, j: int, w: float) -> tuple[int, int]:
        """Count ``w`` more for ``j`` in row ``i`` and for ``i`` in row ``j`` (``i != j``);
        returns the two rows' sizes."""
        # the two directions written out: learning calls this for every pair it counts
        at_i, at_j = self._at[i], self._at[j]
        p = at_i.get(j)
        if p is None:
            at_i[j] = len(at_i)
            self._keys[i].append(j)
            self._vals[i].append(w)
        else:
            self._vals[i][p] += w
        p = at_j.get(i)
        if p is None:
            at_j[i] = len(at_j)
            self._keys[j].append(i)
            self._vals[j].append(w)
        else:
            self._vals[j][p] += w
        return len(at_i), len(at_j)

    def get(self, i: int, j: int) -> float:
        """The count of ``j`` in row ``i`` (0 when it has none)."""
        p = self._at[i].get(j)
        return 0.0 if p is None else self._vals[i][p]

    def keys(self, i: int) -> np.ndarray:
        return np.array(self._keys[i], dtype=np.int64)

    def values(self, i: int) -> np.ndarray:
        return np.array(self._vals[i], dtype=np.float64)

    def gather(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sizes of ``rows`` and all their entries, row after row: indices and counts."""
        at_keys, at_vals = self._keys, self._vals
        sizes = np.fromiter((len(at_keys[i]) for i in rows), dtype=np.int64, count=len(rows))
        # one join of the rows' buffers each (a NumPy view of each row costs ~1 us)
        keys = np.frombuffer(bytearray().join([at_keys[i] for i in rows]), dtype=np.intc)
        vals = np.frombuffer(bytearray().join([at_vals[i] for i in rows]), dtype=np.float64)
        return sizes, keys.astype(np.int64), vals

    def keep(self, i: int, js: Iterable[int]) -> None:
        """Row ``i`` with only the neighbours ``js``, in that order."""
        vals, at = self._vals[i], self._at[i]
        keys = [int(j) for j in js]
        self._set(i, keys, [vals[at[j]] for j in keys])

    def remove(self, i: int, j: int) -> None:
        """Row ``i`` without ``j`` (the others in their order)."""
        if j in self._at[i]:
            self.keep(i, [k for k in self._keys[i] if k != j])

    def clear(self, i: int) -> None:
        self._set(i, [], [])

    def scale(self, factor: float, floor: float) -> None:
        """Every count times ``factor``; the entries that fall to ``floor`` or below go."""
        for i in range(len(self._at)):
            if not len(self._keys[i]):
                continue
            vals = np.frombuffer(self._vals[i], dtype=np.float64) * factor
            live = vals > floor
            keys = np.frombuffer(self._keys[i], dtype=np.intc)[live].tolist()
            self._set(i, keys, vals[live].tolist())

    def _set(self, i: int, keys: list[int], values: list[float]) -> None:
        self._at[i] = {j: p for p, j in enumerate(keys)}
        self._keys[i] = array("i", keys)
        self._vals[i] = array("d", values)
