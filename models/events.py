"""The one path an interaction takes into a user's state and the models.

The worker, ``recstream evaluate`` and every script call :func:`apply_event` for an
interaction (and :func:`apply_item` for a catalogue change), so the order of the steps cannot
drift between them:

1. score: was the item in the list last served to the user (the online hit)?
2. session boundary: a new session id, or an idle gap, starts an empty session *before* the
   models learn, so a model reading ``user.session_items`` sees the session the event
   belongs to (the first event of a session has no predecessor in it);
3. learn: the model (a single source or the hybrid) learns the event against the user's
   state as it was before the event;
4. the user's state takes the event (count, history, session).

:func:`apply_events` is the same path for a batch of events (the worker's batches, the
evaluation's): steps 1, 2 and 4 per event in order, step 3 for the whole batch at once
(:meth:`Recommender.learn_many <models.base.Recommender.learn_many>`), each event learned
against the user's state as it was just before it (a :class:`UserSnapshot`), so a model that
learns a batch in array operations sees what it would have seen one event at a time.

>>> from models.popularity import DecayedPopularity
>>> from models.base import UserState
>>> pop, user = DecayedPopularity(), UserState("u1")
>>> user.last_served = ["b"]
>>> [apply_event(pop, user, Event("u1", item, ts=float(t))) for t, item in enumerate("ab")]
[False, True]
>>> user.interactions, user.recent, pop.score("a") > 0
(2, ['a', 'b'], True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.base import Recommender, UserState, interaction_weight

__all__ = [
    "Event",
    "ItemChange",
    "UserSnapshot",
    "apply_event",
    "apply_events",
    "apply_item",
    "learn_event",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One interaction as the models see it (the message schema turns into this).

    ``kind`` is the event type (``view``, ``purchase``, ``rating``, ...); ``value`` the
    rating or weight that came with it; ``ts`` event time in seconds.
    """

    user_id: str
    item_id: str
    ts: float
    kind: str = "click"
    value: float | None = None
    session_id: str | None = None

    @property
    def weight(self) -> float:
        """Implicit-feedback weight (see :func:`models.base.interaction_weight`)."""
        return interaction_weight(self.kind, self.value)

    @property
    def rating(self) -> float | None:
        """The explicit rating, for rating events only."""
        return self.value if self.kind == "rating" else None


def learn_event(model: Recommender, user: UserState, event: Event) -> None:
    """``model`` learns ``event`` against ``user`` as it is now (no state change)."""
    model.learn_one(user, event.item_id, ts=event.ts, weight=event.weight, value=event.rating)


class UserSnapshot(UserState):
    """A user's state just before one event of a batch, for the models to learn it against.

    What recording the batch's later events changes (the count, the history, the session, the
    last-seen time) is copied; what the models own in the user's state (the content profile)
    is the live user's, read and written through, so a model that updates it as it learns the
    events in order (the content model) keeps updating the one profile.

    >>> live = UserState("u", recent=["a"], profile={"tag:x": 1.0})
    >>> snap = UserSnapshot(live)
    >>> live.record("b", ts=1.0)
    >>> snap.recent, snap.interactions, live.recent
    (['a'], 0, ['a', 'b'])
    >>> snap.profile = {"tag:y": 2.0}
    >>> live.profile
    {'tag:y': 2.0}
    """

    def __init__(self, live: UserState) -> None:  # a copy, not the dataclass's constructor
        self.__dict__.update(
            _live=live,
            user_id=live.user_id,
            interactions=live.interactions,
            recent=list(live.recent),
            session_id=live.session_id,
            session_items=list(live.session_items),
            last_seen=live.last_seen,
            last_served=live.last_served,
            hits=live.hits,
            max_history=live.max_history,
            max_session=live.max_session,
        )

    @property  # type: ignore[override]
    def profile(self) -> dict[str, float]:
        return self._live.profile

    @profile.setter
    def profile(self, value: dict[str, float]) -> None:
        self._live.profile = value

    @property  # type: ignore[override]
    def profile_ts(self) -> float | None:
        return self._live.profile_ts

    @profile_ts.setter
    def profile_ts(self, value: float | None) -> None:
        self._live.profile_ts = value

    def __reduce__(self) -> tuple[Any, ...]:  # pickles as the plain state it shows
        return UserState.from_dict, (self.to_dict(),)


def apply_events(
    model: Recommender,
    users: Mapping[str, UserState],
    events: Sequence[Event],
    *,
    idle_gap: float = 1800.0,
    learn: bool | Sequence[bool] = True,
    failed: dict[int, Exception] | None = None,
) -> list[bool]:
    """Apply a batch of events, in order: for each, the hit against the list last served to
    its user, the session boundary and the user's state (``users[event.user_id]``); then the
    model learns every event with ``learn`` true (one flag per event, or one for all) in one
    call, each against a snapshot of its user's state just before it. Returns each event's
    hit. The events the model failed to learn are put in ``failed`` (index -> exception):
    their users' states hold them all the same, and the other events are learned.

    >>> from models.popularity import DecayedPopularity
    >>> pop, users = DecayedPopularity(), {"u": UserState("u"), "v": UserState("v")}
    >>> users["u"].last_served = ["b"]
    >>> batch = [Event("u", "a", 0.0), Event("v", "a", 0.0), Event("u", "b", 0.0)]
    >>> apply_events(pop, users, batch, learn=[True, False, True])
    [False, False, True]
    >>> users["u"].recent, users["v"].interactions, pop.score("a")
    (['a', 'b'], 1, 1.0)
    """
    flags = [learn] * len(events) if isinstance(learn, bool) else list(learn)
    if len(flags) != len(events):
        raise ValueError("one learn flag per event")
    hits: list[bool] = []
    snapshots: list[UserState] = []
    learned: list[Event] = []
    at: list[int] = []
    for i, event in enumerate(events):
        user = users[event.user_id]
        hit = event.item_id in user.last_served
        user.hits += hit
        hits.append(hit)
        user.start_session_if_new(event.session_id, event.ts, idle_gap)
        if flags[i]:
            snapshots.append(UserSnapshot(user))
            learned.append(event)
            at.append(i)
        user.record(event.item_id, event.ts)
    if learned:
        errors = model.learn_many(snapshots, learned)
        if failed is not None:
            failed.update({at[j]: exc for j, exc in errors.items()})
    return hits


def apply_event(
    model: Recommender,
    user: UserState,
    event: Event,
    *,
    idle_gap: float = 1800.0,
    learn: bool = True,
) -> bool:
    """Apply one event (:func:`apply_events` of one): hit, session boundary, user state,
    learning (unless ``learn`` is false because the models already hold it). Returns whether
    it was an online hit; raises what the model raised if it failed to learn it."""
    failed: dict[int, Exception] = {}
    hit = apply_events(
        model, {user.user_id: user}, [event], idle_gap=idle_gap, learn=[learn], failed=failed
    )[0]
    if failed:
        raise failed[0]
    return hit


@dataclass(frozen=True, slots=True)
class ItemChange:
    """A catalogue change as the models see it: an upsert of metadata, or a delete."""

    item_id: str
    deleted: bool = False
    title: str = ""
    text: str = ""
    tags: tuple[str, ...] = ()


def apply_item(model: Recommender, change: ItemChange) -> None:
    """The one path of a catalogue change into a model (a source or the hybrid).

    >>> from models.popularity import DecayedPopularity
    >>> from models.base import UserState
    >>> pop = DecayedPopularity()
    >>> _ = apply_event(pop, UserState("u"), Event("u", "x", ts=0.0))
    >>> apply_item(pop, ItemChange("x", deleted=True))
    >>> pop.recommend(UserState("v"), k=3)
    []
    """
    if change.deleted:
        model.forget_item(change.item_id)
    else:
        model.upsert_item(change.item_id, title=change.title, text=change.text, tags=change.tags)
