"""What a batch is made of and what comes out of it: the records the agent hands over, the
outcome the processor decides and the commit writes, and the names events are known by."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.base import UserState
from state.stats import BatchStats
from streams.schemas import DeadLetter

__all__ = ["BatchOutcome", "Record", "StateLost", "dedup_key"]


@dataclass(frozen=True, slots=True)
class Record:
    """A raw Kafka record, as the agent hands it over."""

    value: bytes | None
    partition: int
    offset: int
    timestamp: float | None = None  # broker (arrival) time, seconds
    key: bytes | None = None


@dataclass
class BatchOutcome:
    """What :meth:`BatchProcessor.process` decided for one batch; :meth:`BatchProcessor.commit`
    writes it. ``users`` are the states to write, ``markers`` the dedup keys of the events
    applied with where each sits in the log, ``offsets`` the newest offset seen per
    partition, ``applied`` those that move a partition's applied offset forward."""

    dead: list[DeadLetter] = field(default_factory=list)
    #: each touched user's new list, as the JSON object published (a
    #: :class:`~streams.schemas.Recommendation` by its schema: ``recommendation_message``)
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    #: the same lists as the JSON bytes sent (encoded once: published, and stored in Redis
    #: for ``GET /recommendations``), by user
    published: dict[str, bytes] = field(default_factory=dict)
    stats: BatchStats = field(default_factory=BatchStats)
    users: dict[str, UserState] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    #: what the fence compares at commit: each partition's applied offset and each user's
    #: stored version as the batch read them
    read_offsets: dict[str, int | None] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    #: what the batch taught the models, per source partition, for the other workers (each a
    #: :class:`~streams.schemas.ModelUpdate` as the JSON object sent)
    updates: list[dict[str, Any]] = field(default_factory=list)
    #: the event loop's CPU seconds per ``(source, stage)`` in the models since the batch
    #: before (this batch's learning and ranking, and any list ranked for HTTP meanwhile)
    model_cpu: dict[tuple[str, str], float] = field(default_factory=dict)


@dataclass
class StateLost(Exception):
    """Redis has no applied offset for ``topic``/``partition`` although the log holds records
    before ``first`` (the batch's first offset there): the state they built is gone."""

    topic: str
    partition: int
    first: int

    def __str__(self) -> str:
        return (
            f"Redis state of {self.topic}:{self.partition} lost (no applied offset, records "
            f"before offset {self.first} in the log): rebuilding it from the log"
        )


def dedup_key(user_id: str, event_id: str | None, origin: str) -> str:
    """The key an event is deduplicated by: an explicit ``event_id`` per user (``e:``, the
    user id length-prefixed so no two pairs collide); an id-less record by its place in the
    log (``o:``), a namespace no explicit id can reach.

    >>> dedup_key("u1", "evt-9", "interactions:0:5"), dedup_key("u1", None, "interactions:0:5")
    ('e:2:u1:evt-9', 'o:interactions:0:5')
    """
    return f"e:{len(user_id)}:{user_id}:{event_id}" if event_id is not None else f"o:{origin}"
