"""Next-item models from the ordered items of the user's current session.

:class:`TransitionModel` learns decayed item -> next-item transition counts (first order, and
optionally "skip" transitions from the item two back) and scores what usually follows the last
few items of the session. :class:`SessionKNN` keeps the most recent sessions as item sets and
recommends the items of the past sessions most similar to the current one (V-SKNN style).

Both read the session from the :class:`~models.base.UserState` they are given. Through
:func:`models.events.apply_event` a model learns an event after the session boundary is settled
and before the user's state takes the event: the previous item is ``user.session_items[-1]``,
and the first event of a session has none.

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
from collections import deque
from collections.abc import Collection
from itertools import islice

from models.base import Candidate, Recommender, UserState

__all__ = ["SessionKNN", "TransitionModel"]

_MAX_WEIGHT = 10.0  # one event never counts more than this, whatever the caller passes
_FLOOR = 1e-12  # decayed evidence below this (one event now weighs 1) is dropped on rescale


def context_items(user: UserState, n: int) -> list[str]:
    """The last ``n`` distinct items of the session (of the history if none), newest first."""
    source = user.session_items or user.recent
    out: list[str] = []
    for item in reversed(source):
        if item not in out:
            out.append(item)
            if len(out) >= n:
                break
    return out


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
        if self._t0 is None:
            self._t0 = now
        exponent = (now - self._t0) / self.half_life
        if exponent > 60:  # rescale before floats overflow; ratios are unchanged
            factor = 2.0 ** (-exponent)  # evidence decayed below _FLOOR is forgotten
            self._out = {i: v * factor for i, v in self._out.items() if v * factor > _FLOOR}
            self._next = {
                i: kept
                for i, row in self._next.items()
                if (kept := {j: c * factor for j, c in row.items() if c * factor > _FLOOR})
            }
            self._t0, exponent = now, 0.0
        return float(2.0 ** max(exponent, -60.0))

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
        if not (math.isfinite(weight) and weight > 0 and math.isfinite(ts)):
            return
        self._events += 1
        w = min(weight, _MAX_WEIGHT) * self._boost(ts)
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
        ranked = heapq.nsmallest(
            k,
            ((j, s) for j, s in scores.items() if j not in exclude and s > 0 and math.isfinite(s)),
            key=lambda p: (-p[1], p[0]),
        )
        return [Candidate(j, s, [self.name], [best[j][1]]) for j, s in ranked]

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

    name = "sknn"

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

    def _add(self, sid: int, item: str) -> bool:
        items = self._sessions[sid]
        if item in items:
            return False
        items[item] = None
        self._postings.setdefault(item, {})[sid] = None
        if len(items) > self.max_session_len:
            self._remove(sid, next(iter(items)))
        return True

    def _remove(self, sid: int, item: str) -> None:
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
        for item in user.session_items[-self.max_session_len :]:
            self._add(sid, item)  # a no-op unless the model missed events (e.g. a restart)
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
        ranked = heapq.nsmallest(
            k,
            ((j, s) for j, s in scores.items() if j not in exclude),
            key=lambda p: (-p[1], p[0]),
        )
        out: list[Candidate] = []
        for j, s in ranked:
            why: dict[str, float] = {}
            for sid, sim in neighbors:
                items = self._sessions[sid]
                if j in items:
                    for i, w in current.items():
                        if i in items:
                            why[i] = why.get(i, 0.0) + sim * w
            because = heapq.nsmallest(2, why, key=lambda i: (-why[i], i))
            out.append(Candidate(j, s, [self.name], because))
        return out

    def forget_item(self, item_id: str) -> None:
        for sid in list(self._postings.get(item_id, ())):
            self._remove(sid, item_id)
