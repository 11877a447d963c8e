"""What batches did, counted: one typed record from the processor to Redis and the dashboard.

A worker's :class:`BatchStats` per batch is summed into its live metrics and into the
cluster-wide counters in Redis (:meth:`state.store.RedisState.commit_batch`), where
``users_moved`` summed over every batch is the number of users in each phase.

>>> a = BatchStats()
>>> a.count_event("warm", hit=True)
>>> a.move_user(None, "warm")
>>> b = BatchStats(dead=2)
>>> b.move_user("warm", "active")
>>> total = a + b
>>> total.events, total.hits, total.records, total.events_by_phase, total.users_moved
(1, 1, 3, {'warm': 1}, {'warm': 0, 'active': 1})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BatchStats"]

_COUNTS = (
    "events",
    "dead",
    "duplicates",
    "replayed",
    "relogged",
    "odd_keys",
    "hits",
    "recommendations",
    "batches",
)
_BY_PHASE = ("events_by_phase", "hits_by_phase", "users_moved")


@dataclass
class BatchStats:
    """Counts of one batch (or a sum of batches).

    ``events`` were applied, ``dead`` dead-lettered, ``duplicates`` dropped by event id,
    ``replayed`` already applied before a restart, ``relogged`` found below an applied
    offset yet new (a recreated log), ``odd_keys`` records whose Kafka key is not their
    ``user_id`` (processed under the ``user_id``); ``hits`` events whose item was in the list last
    served; ``recommendations`` lists published. ``events_by_phase``/``hits_by_phase``
    split events and hits by the user's phase when the event arrived; ``users_moved`` holds
    +1/-1 moves of users between phases.
    """

    events: int = 0
    dead: int = 0
    duplicates: int = 0
    replayed: int = 0
    relogged: int = 0
    odd_keys: int = 0
    hits: int = 0
    recommendations: int = 0
    batches: int = 0
    events_by_phase: dict[str, int] = field(default_factory=dict)
    hits_by_phase: dict[str, int] = field(default_factory=dict)
    users_moved: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """Records consumed, whatever became of them (relogged ones are among ``events``)."""
        return self.events + self.dead + self.duplicates + self.replayed

    def count_event(self, phase: str, hit: bool) -> None:
        self.events += 1
        self.hits += hit
        self.events_by_phase[phase] = self.events_by_phase.get(phase, 0) + 1
        self.hits_by_phase[phase] = self.hits_by_phase.get(phase, 0) + hit

    def move_user(self, before: str | None, after: str) -> None:
        """A user now in phase ``after``, before in ``before`` (``None``: a new user)."""
        if before == after:
            return
        self.users_moved[after] = self.users_moved.get(after, 0) + 1
        if before is not None:
            self.users_moved[before] = self.users_moved.get(before, 0) - 1

    def __add__(self, other: BatchStats) -> BatchStats:
        out = BatchStats(**{name: getattr(self, name) + getattr(other, name) for name in _COUNTS})
        for name in _BY_PHASE:
            merged = dict(getattr(self, name))
            for phase, n in getattr(other, name).items():
                merged[phase] = merged.get(phase, 0) + n
            setattr(out, name, merged)
        return out

    def counters(self) -> dict[str, int]:
        """Flat ``name`` / ``name:phase`` counters (the Redis hash's fields), zeros left out."""
        flat = {name: getattr(self, name) for name in _COUNTS}
        for name, prefix in zip(_BY_PHASE, ("events", "hits", "users"), strict=True):
            flat.update({f"{prefix}:{p}": n for p, n in getattr(self, name).items()})
        return {k: n for k, n in flat.items() if n}

    @classmethod
    def from_counters(cls, flat: Mapping[str, int]) -> BatchStats:
        """The inverse of :meth:`counters`."""
        out = cls()
        tables = dict(zip(("events", "hits", "users"), _BY_PHASE, strict=True))
        for key, n in flat.items():
            name, _, phase = key.partition(":")
            if phase and name in tables:
                getattr(out, tables[name])[phase] = int(n)
            elif not phase and name in _COUNTS:
                setattr(out, name, int(n))
        return out
