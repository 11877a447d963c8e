"""The one protocol every online model follows, and the per-user state they read.

Models are pure: no I/O, picklable, constructors take hyperparameters only. A model learns
one interaction at a time (``learn_one``) and proposes candidates for a user (``recommend``).
The user's state (history, session, content profile) is passed in, not stored by the model,
because it lives in Redis between events; ``state/`` persists it, ``models/`` only reads and
updates it in memory.

>>> user = UserState("u1")
>>> user.observe("i1", ts=10.0)
>>> user.observe("i2", ts=20.0)
>>> user.interactions, user.recent, user.last_item
(2, ['i1', 'i2'], 'i2')
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from models.events import Event
    from models.ranking import Proposals, RankBatch

__all__ = [
    "EVENT_WEIGHTS",
    "Candidate",
    "ItemScorer",
    "RatingPredictor",
    "Recommender",
    "TrendingSource",
    "UserState",
    "can",
    "interaction_weight",
]

#: How strongly each event type says "I like this item". A dislike is negative: models that can
#: use it learn it as a negative, the others ignore it. Ratings are weighted by ``value``.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "add_to_cart": 2.0,
    "purchase": 3.0,
    "like": 2.0,
    "dislike": -1.0,
    "rating": 1.0,
}


@functools.lru_cache(maxsize=4096)
def interaction_weight(event_type: str, value: float | None = None) -> float:
    """Implicit-feedback weight of one event, always finite and within [-3, 3].

    A rating counts as a positive interaction (you watched it), more so the higher it is;
    ratings of 1-2 on a 5-point scale count as a weak positive, not a negative, because
    the user still chose the item.

    >>> interaction_weight("purchase"), interaction_weight("rating", 5.0), interaction_weight("x")
    (3.0, 1.5, 1.0)
    """
    w = EVENT_WEIGHTS.get(event_type, 1.0)
    if event_type == "rating" and value is not None and math.isfinite(value):
        w = 0.5 + max(0.0, min(value, 5.0)) / 5.0
    return max(-3.0, min(3.0, w))


@dataclass(slots=True)
class Candidate:
    """One recommended item from one or more sources, with the user's items that led to it."""

    item_id: str
    score: float
    sources: list[str] = field(default_factory=list)
    because: list[str] = field(default_factory=list)


@dataclass
class UserState:
    """Everything recstream keeps about one user between events (stored in Redis by ``state/``).

    ``recent`` holds the user's distinct items, oldest first, capped at ``max_history``; it is
    also the "already seen" set that recommendations exclude. ``session_items`` is the ordered
    item list of the current session. ``profile`` is the content model's sparse taste vector.
    ``last_served`` is the list last published to the user (the online hit is scored against
    it; the whole message is stored beside the state, not in it).
    """

    user_id: str
    interactions: int = 0
    recent: list[str] = field(default_factory=list)
    session_id: str | None = None
    session_items: list[str] = field(default_factory=list)
    last_seen: float | None = None
    profile: dict[str, float] = field(default_factory=dict)
    profile_ts: float | None = None
    last_served: list[str] = field(default_factory=list)
    hits: int = 0
    max_history: int = 500
    max_session: int = 50

    @property
    def last_item(self) -> str | None:
        return self.session_items[-1] if self.session_items else None

    @property
    def seen(self) -> set[str]:
        return set(self.recent)

    def new_session(self, session_id: str | None, ts: float, idle_gap: float) -> bool:
        """Whether an event with ``session_id`` at ``ts`` starts a new session."""
        if session_id is not None:
            return session_id != self.session_id
        return self.last_seen is None or ts - self.last_seen > idle_gap

    def start_session_if_new(
        self, session_id: str | None, ts: float, idle_gap: float = 1800.0
    ) -> bool:
        """Begin a new, empty session when the event at ``ts`` does not continue this one."""
        if not self.new_session(session_id, ts, idle_gap):
            return False
        self.session_items = []
        self.session_id = session_id if session_id is not None else f"{self.user_id}@{ts:.0f}"
        return True

    def observe(
        self,
        item_id: str,
        ts: float,
        session_id: str | None = None,
        idle_gap: float = 1800.0,
    ) -> None:
        """Record one interaction, starting a new session after ``idle_gap`` seconds idle or
        on a new session id (models learn through :func:`models.events.apply_event`)."""
        self.start_session_if_new(session_id, ts, idle_gap)
        self.record(item_id, ts)

    def record(self, item_id: str, ts: float) -> None:
        """Count one interaction in the current session: move the item to the end of the
        history and append it to the session (the caller has settled the session)."""
        self.interactions += 1
        if item_id in self.recent:
            self.recent.remove(item_id)
        self.recent.append(item_id)
        if len(self.recent) > self.max_history:
            del self.recent[: len(self.recent) - self.max_history]
        self.session_items.append(item_id)
        if len(self.session_items) > self.max_session:
            del self.session_items[: len(self.session_items) - self.max_session]
        self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "interactions": self.interactions,
            "recent": self.recent,
            "session_id": self.session_id,
            "session_items": self.session_items,
            "last_seen": self.last_seen,
            "profile": self.profile,
            "profile_ts": self.profile_ts,
            "last_served": self.last_served,
            "hits": self.hits,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **caps: int) -> UserState:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, **caps})


class Recommender(abc.ABC):
    """Base of every online model: learn from one interaction, propose candidates for a user.

    ``learn_one`` sees the user's state *before* the event is added to it (so a sequence model
    can read the previous item); it may update model-owned parts of that state in place
    (e.g. the content profile). ``recommend`` never changes any state.
    """

    #: Name used in a recommendation's ``sources``.
    name: str = "base"
    #: Whether its candidates carry reasons (``because``); the blend takes an item's reasons
    #: from the first source of the user's phase that proposed it and explains.
    explains: bool = True

    @abc.abstractmethod
    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        """Learn from ``user`` interacting with ``item_id`` at ``ts`` (seconds)."""

    @abc.abstractmethod
    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        """Up to ``k`` candidates, best first, none of them in ``exclude``."""

    def learn_many(
        self, users: Sequence[UserState], events: Sequence[Event]
    ) -> dict[int, Exception]:
        """Learn ``events`` in order, ``users[i]`` the state of the user of ``events[i]`` just
        before it (see :func:`models.events.apply_events`); the same as ``learn_one`` on each in
        turn, which is what this default does. Returns the events that failed, by index (one
        bad event must not stop the others). Sources that learn a batch in array operations
        override it."""
        failed: dict[int, Exception] = {}
        for i, (user, event) in enumerate(zip(users, events, strict=True)):
            try:
                self.learn_one(
                    user, event.item_id, ts=event.ts, weight=event.weight, value=event.rating
                )
            except Exception as exc:  # errors are data: the caller dead-letters the event
                failed[i] = exc
        return failed

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """Up to ``n`` candidates for each user of ``batch``, as arrays (see
        :mod:`models.ranking`): what ``recommend(user, n, exclude)`` lists for each, which is
        what this default asks. Sources that rank many users at once override it; the contract
        suite checks that both agree."""
        from models.ranking import Proposals

        lists = [self.recommend(u, n, e) for u, e in zip(batch.users, batch.excludes, strict=True)]
        return Proposals.of_lists(batch, lists)

    def forget_item(self, item_id: str) -> None:  # noqa: B027 - optional hook
        """Drop an item (deleted from the catalogue). Models that cannot, ignore it."""

    def upsert_item(  # noqa: B027 - optional hook
        self,
        item_id: str,
        *,
        title: str = "",
        text: str = "",
        tags: Collection[str] = (),
    ) -> None:
        """Learn an item's metadata from the catalogue. Models that do not use it, ignore it."""


# -- capabilities: what some sources offer beyond Recommender, found by method, never by name --


@runtime_checkable
class RatingPredictor(Protocol):
    """A source that predicts a user's explicit rating of an item (e.g. :class:`RatingMF
    <models.rating_mf.RatingMF>`), read-only: it creates no state for unknown ids."""

    def predict_rating(self, user_id: str, item_id: str) -> float: ...


@runtime_checkable
class ItemScorer(Protocol):
    """A source with a score per item, independent of the user (e.g. decayed popularity)."""

    def score(self, item_id: str) -> float: ...


@runtime_checkable
class TrendingSource(Protocol):
    """A source that lists the items trending now, with their scores."""

    def trending(self, n: int = 10) -> list[tuple[str, float]]: ...


def can(model: object, capability: type) -> bool:
    """Whether ``model``'s class offers ``capability`` (a protocol above), decided once per
    class (``isinstance`` on a runtime protocol inspects the object on every call).

    >>> can(UserState("u"), RatingPredictor), can(UserState("u"), UserState)
    (False, True)
    """
    return _class_can(type(model), capability)


@functools.cache
def _class_can(cls: type, capability: type) -> bool:
    return issubclass(cls, capability)
