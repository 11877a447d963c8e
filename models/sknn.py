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
from itertools import islice

from models.base import Candidate, Recommender, UserState
from models.common import context_items, top_items

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
