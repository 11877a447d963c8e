"""Coherent models across workers: every worker learns every partition's events.

Each worker learns the partitions the consumer group gave it, with each user's real state
from Redis. For every batch it then publishes a :class:`~streams.schemas.ModelUpdate` to
topic ``model-updates`` (key = source ``topic:partition``): per user, the context the models
read when learning (history tail, session) as it was before the batch, and the events in the
order they were learned, with their offsets. Every worker reads every partition of
``model-updates`` (no group) and learns each update through the same
:func:`models.events.apply_event` path, skipping the offsets its models hold already
(:meth:`ModelOwner.holds`). So each partition's offsets are learned once by every worker,
whichever worker learned them first; after a crash or a rebalance a partition's new owner
continues where its models stand. Count-based models end up equal on every worker (sums
commute); factor models get the same steps in another order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.base import UserState
from models.events import Event, apply_events, learn_event
from streams.schemas import ModelUpdate, UserContext
from streams.settings import Settings
from streams.worker.owner import ModelOwner
from streams.worker.publish import Headers

__all__ = [
    "CONTEXT_ITEMS",
    "LAST_HEADER",
    "UpdateBuilder",
    "apply_update",
    "update_handler",
    "update_headers",
    "update_held",
]

log = logging.getLogger(__name__)

#: Newest history items a context carries: more than any source reads when it learns (item
#: CF's and EASE's windows, the sequence model's history); the next-item softmax's mask of a
#: replica sees only these of a long history.
CONTEXT_ITEMS = 64

#: The record header of a ``model-updates`` record that carries its update's ``last`` offset
#: (the record's key is the update's source ``topic:partition``): a worker whose models hold
#: that offset passes the record over without decoding it (:func:`update_held`), as it does
#: with every update it published itself.
LAST_HEADER = "recstream-last"


def context_of(user: UserState) -> dict[str, Any]:
    """``user``'s :class:`~streams.schemas.UserContext` as the JSON object it is sent as."""
    return {
        "user_id": user.user_id,
        "interactions": user.interactions,
        "recent": user.recent[-CONTEXT_ITEMS:],
        "session_id": user.session_id,
        "session_items": list(user.session_items),
        "last_seen": user.last_seen,
    }


def user_of(ctx: UserContext, history: int) -> UserState:
    return UserState(
        ctx.user_id,
        interactions=ctx.interactions,
        recent=list(ctx.recent),
        session_id=ctx.session_id,
        session_items=list(ctx.session_items),
        last_seen=ctx.last_seen,
        max_history=history,
    )


def _update(topic: str, partition: int, worker: str) -> dict[str, Any]:
    return {
        "topic": topic,
        "partition": partition,
        "first": 0,
        "last": 0,
        "worker": worker,
        "users": [],
        "events": [],
    }


@dataclass
class UpdateBuilder:
    """Collects, while a batch is applied, what its models learned, per source partition: each
    a :class:`~streams.schemas.ModelUpdate` as the JSON object it is sent as (built from plain
    values, one event and one user at a time on the worker's hot path)."""

    topic: str
    worker: str
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    _users: dict[tuple[int, str], int] = field(default_factory=dict)

    def touch(self, partition: int, user: UserState) -> int:
        """Note ``user``'s context, unless already noted for this batch: call it before the
        user takes their first event of the batch. Returns the user's index."""
        update = self.updates.get(partition)
        if update is None:
            update = self.updates[partition] = _update(self.topic, partition, self.worker)
        u = self._users.get((partition, user.user_id))
        if u is None:
            u = self._users[(partition, user.user_id)] = len(update["users"])
            update["users"].append(context_of(user))
        return u

    def add(
        self, partition: int, offset: int, user: UserState, event: Event, advance: bool
    ) -> None:
        """Record ``event`` (at ``offset``), learned by the models (``user`` touched before it
        took its first event of the batch)."""
        u = self.touch(partition, user)
        self.updates[partition]["events"].append(
            {
                "u": u,
                "item_id": event.item_id,
                "ts": event.ts,
                "kind": event.kind,
                "value": event.value,
                "session_id": event.session_id,
                "offset": offset,
                "advance": advance,
            }
        )

    def close(self, offsets: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
        """The batch's updates, one per partition it read (``offsets``: partition -> first and
        last offset), empty ones too: they tell the others the range holds nothing to learn."""
        out = []
        for partition, (first, last) in sorted(offsets.items()):
            update = self.updates.get(partition) or _update(self.topic, partition, self.worker)
            update["first"], update["last"] = first, last
            out.append(update)
        return out


def apply_update(owner: ModelOwner, update: ModelUpdate, *, history: int, idle_gap: float) -> int:
    """Learn what ``update`` holds that ``owner``'s models do not; returns how many events.
    Each user's context is replayed from the update's snapshot; the events learn together
    (:func:`models.events.apply_events`), as on the worker that published them."""
    tp = f"{update.topic}:{update.partition}"
    if owner.holds(tp, update.last):
        return 0
    users = [user_of(ctx, history) for ctx in update.users]
    by_id = {user.user_id: user for user in users}
    events: list[Event] = []
    flags: list[bool] = []
    for ev in update.events:
        user = users[ev.u]
        event = Event(user.user_id, ev.item_id, ev.ts, ev.kind, ev.value, ev.session_id)
        learn = not owner.holds(tp, ev.offset)
        if ev.advance:
            events.append(event)
            flags.append(learn)
        elif learn:  # a replayed record: against the user's state as it was
            learn_event(owner.engine, user, event)
    apply_events(owner.engine, by_id, events, idle_gap=idle_gap, learn=flags, failed={})
    owner.advance({tp: update.last})
    return sum(flags)


def update_headers(update: dict[str, Any]) -> Headers:
    """The headers a ``model-updates`` record of ``update`` (a built update) carries."""
    return [(LAST_HEADER, str(update["last"]).encode())]


def update_held(
    owner: ModelOwner,
) -> Callable[[bytes | None, Headers], bool]:
    """Whether a ``model-updates`` record (its key and headers) holds nothing ``owner``'s
    models lack, told without decoding its value: what :func:`apply_update` finds first, from
    the key (the source ``topic:partition``) and :data:`LAST_HEADER`. A record without them
    (or with one that does not parse) is not held: it is decoded and applied as before.

    >>> from models.hybrid import HybridRecommender
    >>> owner = ModelOwner(HybridRecommender({}), store=None, interval=60.0)  # type: ignore
    >>> owner.advance({"interactions:3": 41})
    >>> held = update_held(owner)
    >>> [held(b"interactions:3", [(LAST_HEADER, last)]) for last in (b"41", b"42", b"x")]
    [True, False, False]
    >>> held(b"interactions:3", []), held(None, [(LAST_HEADER, b"41")])
    (False, False)
    """

    def held(key: bytes | None, headers: Headers) -> bool:
        if key is None:
            return False
        for name, value in headers:
            if name == LAST_HEADER:
                try:
                    last = int(value)
                except ValueError:
                    return False
                return owner.holds(key.decode(errors="replace"), last)
        return False

    return held


def update_handler(settings: Settings, owner: ModelOwner) -> Callable[[bytes | None], None]:
    """What :func:`streams.worker.follow.follow` calls for each ``model-updates`` record."""

    def handle(value: bytes | None) -> None:
        update = ModelUpdate.model_validate_json(value or b"")
        apply_update(owner, update, history=settings.history, idle_gap=settings.session_gap)

    return handle
