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

from dataclasses import dataclass

from models.base import Recommender, UserState, interaction_weight

__all__ = ["Event", "ItemChange", "apply_event", "apply_item", "learn_event"]


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


def apply_event(
    model: Recommender,
    user: UserState,
    event: Event,
    *,
    idle_gap: float = 1800.0,
    learn: bool = True,
) -> bool:
    """Apply one event: hit, session boundary, learning (unless ``learn`` is false because
    the models already hold it), user state. Returns whether it was an online hit."""
    hit = event.item_id in user.last_served
    user.hits += hit
    user.start_session_if_new(event.session_id, event.ts, idle_gap)
    if learn:
        learn_event(model, user, event)
    user.record(event.item_id, event.ts)
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
