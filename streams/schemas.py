"""Every message recstream reads or writes, as pydantic v2 models, in one place.

>>> ev = Interaction.model_validate_json(b'{"user_id": "u1", "item_id": "i9", "timestamp": 0}')
>>> ev.type, ev.timestamp
('click', 0.0)
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.base import Candidate, UserState
from models.events import Event, ItemChange

__all__ = [
    "DLQ_MAX_BYTES",
    "DeadLetter",
    "EventType",
    "Interaction",
    "ItemEvent",
    "LearnedEvent",
    "ModelUpdate",
    "RecItem",
    "Recommendation",
    "UserContext",
    "encode",
    "event_time_error",
    "recommendation_message",
    "validation_error_text",
]

EventType = Literal["view", "click", "add_to_cart", "purchase", "like", "dislike", "rating"]


#: Earliest event time accepted (1990-01-01T00:00:00Z): older stamps are unit mistakes.
EARLIEST_EVENT_TIME = 631_152_000.0
#: Largest dead-letter envelope sent (the producer's and the broker's default limit is 1 MiB;
#: a margin stays for the record's headers and the batch framing).
DLQ_MAX_BYTES = 900_000


def _epoch_seconds(value: object) -> object:
    """ISO-8601 strings and epoch seconds (or milliseconds, when clearly so) -> float seconds."""
    if isinstance(value, bool):
        raise ValueError("must be epoch seconds or an ISO-8601 string, not a boolean")
    if value is None:
        return value
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return _epoch_seconds(float(text))
        except ValueError:
            pass
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            from datetime import UTC

            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    return value


def event_time_error(ts: float | None, *, arrival: float, max_skew: float) -> str | None:
    """Why event time ``ts`` cannot be trusted against the broker's ``arrival`` time, or
    ``None``: more than ``max_skew`` seconds ahead of arrival, or before 1990. One such event
    would otherwise move every time-decayed model's clock.

    >>> event_time_error(2e9, arrival=1.8e9, max_skew=86400.0)
    'timestamp: 200000000 s ahead of its arrival at the broker (at most 86400 s allowed)'
    """
    if ts is None:
        return None
    if ts - arrival > max_skew:
        return (
            f"timestamp: {ts - arrival:.0f} s ahead of its arrival at the broker "
            f"(at most {max_skew:.0f} s allowed)"
        )
    if ts < EARLIEST_EVENT_TIME:
        return f"timestamp: {ts:.0f} is before 1990 (seconds, milliseconds or ISO-8601 expected)"
    return None


def validation_error_text(exc: ValidationError) -> str:
    """A short, readable reason: 'user_id: Field required; value: Input should be ...'."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class Interaction(BaseModel):
    """One user-item event: the value on topic ``interactions`` (key = user_id)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str = Field(min_length=1, max_length=256)
    item_id: str = Field(min_length=1, max_length=256)
    event_id: str | None = Field(None, min_length=1, max_length=256)
    type: EventType = "click"
    value: float | None = None
    session_id: str | None = Field(None, max_length=256)
    timestamp: float | None = None
    context: dict[str, Any] | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: object) -> object:
        return _epoch_seconds(value)

    @field_validator("value", "timestamp")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("user_id", "item_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def to_event(self, default_ts: float) -> Event:
        """The models' view of this interaction; ``default_ts`` (arrival time) when it has
        no timestamp of its own."""
        ts = self.timestamp if self.timestamp is not None else default_ts
        return Event(self.user_id, self.item_id, ts, self.type, self.value, self.session_id)


class ItemEvent(BaseModel):
    """A catalogue change: the value on topic ``items`` (key = item_id)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    item_id: str = Field(min_length=1, max_length=256)
    op: Literal["upsert", "delete"] = "upsert"
    title: str = ""
    text: str = ""
    tags: list[str] = Field(default_factory=list)
    genres: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    timestamp: float | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: object) -> object:
        return _epoch_seconds(value)

    @property
    def all_tags(self) -> list[str]:
        return [*self.tags, *(g for g in self.genres if g not in self.tags)]

    def to_change(self) -> ItemChange:
        """The models' view of this catalogue change."""
        return ItemChange(
            self.item_id, self.op == "delete", self.title, self.text, tuple(self.all_tags)
        )


class RecItem(BaseModel):
    item_id: str
    score: float
    sources: list[str]
    because: list[str] = Field(default_factory=list)
    title: str | None = None  # from the catalogue, when it has one


class Recommendation(BaseModel):
    """A fresh list for one user: the value on topic ``recommendations`` (key = user_id)."""

    user_id: str
    items: list[RecItem]
    strategy: str
    interactions: int
    event_id: str | None = None
    generated_at: float = Field(default_factory=time.time)
    latency_ms: float | None = None


def recommendation_message(
    user: UserState,
    items: Sequence[Candidate],
    strategy: str,
    event_id: str | None = None,
    latency_ms: float | None = None,
    titles: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The :class:`Recommendation` of ``items`` for ``user`` as the JSON object it is published
    as (what ``Recommendation.model_dump(mode="json")`` gives), built from plain values without
    pydantic objects: the worker builds one per touched user per batch, from values that are
    already of the right types, and encodes it once (:func:`encode`).

    >>> msg = recommendation_message(UserState("u1"), [Candidate("i9", 0.5, ["cf"])], "cold")
    >>> Recommendation.model_validate(msg).model_dump(mode="json") == msg
    True
    """
    get = (titles or {}).get
    return {
        "user_id": user.user_id,
        "items": [
            {
                "item_id": c.item_id,
                "score": round(float(c.score), 6),
                "sources": list(c.sources),
                "because": list(c.because),
                "title": get(c.item_id),
            }
            for c in items
        ],
        "strategy": strategy,
        "interactions": user.interactions,
        "event_id": event_id,
        "generated_at": time.time(),
        "latency_ms": latency_ms,
    }


def encode(message: Mapping[str, Any]) -> bytes:
    """A JSON-ready message (e.g. :func:`recommendation_message`) as compact JSON bytes.

    >>> encode({"a": [1, None], "b": "x"})
    b'{"a":[1,null],"b":"x"}'
    """
    return pydantic_core.to_json(message)


def _as_text(data: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


class UserContext(BaseModel):
    """The part of a user's state the models read when they learn, as it was before the user's
    first event of a batch (``recent`` cut to its newest items)."""

    user_id: str
    interactions: int
    recent: list[str]
    session_id: str | None = None
    session_items: list[str] = Field(default_factory=list)
    last_seen: float | None = None


class LearnedEvent(BaseModel):
    """One event the models learned, in the order its worker learned it: ``u`` indexes the
    update's ``users``; ``advance`` false: learned against the user's state as it was, without
    the user taking it (a record replayed after a crash)."""

    u: int
    item_id: str
    ts: float
    kind: str
    value: float | None = None
    session_id: str | None = None
    offset: int
    advance: bool = True


class ModelUpdate(BaseModel):
    """What one batch of partition ``topic``/``partition`` taught the models (offsets ``first``
    to ``last``): the value on topic ``model-updates`` (key = ``topic:partition``). Every worker
    learns it unless its models hold those offsets already; see ``streams/worker/replication``."""

    topic: str
    partition: int
    first: int
    last: int
    worker: str
    users: list[UserContext] = Field(default_factory=list)
    events: list[LearnedEvent] = Field(default_factory=list)


class DeadLetter(BaseModel):
    """A record that could not be processed: the value on topic ``interactions.dlq``.

    ``raw`` holds the original bytes losslessly: as text when they are valid UTF-8
    (``raw_encoding`` = "utf-8"), otherwise base64 (``raw_encoding`` = "base64"); a record too
    large for an envelope keeps its first bytes only (``raw_truncated``). ``tombstone`` marks a
    record with no value (a null).
    """

    error: str
    topic: str
    partition: int
    offset: int
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    raw_length: int = 0
    raw_sha256: str = ""
    raw_truncated: bool = False
    tombstone: bool = False
    key: str | None = None
    failed_at: float = Field(default_factory=time.time)

    @classmethod
    def of(
        cls,
        raw: bytes | None,
        error: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None = None,
        *,
        max_bytes: int = DLQ_MAX_BYTES,
    ) -> DeadLetter:
        """The envelope of one record. ``raw`` is cut (``raw_truncated``) when the envelope
        would exceed ``max_bytes``; ``raw_length`` and ``raw_sha256`` always describe the whole
        original, which stays in the source topic at ``partition``/``offset``."""
        data = raw or b""
        dead = cls(
            error=error[:2000],
            topic=topic,
            partition=partition,
            offset=offset,
            raw="",
            raw_length=len(data),
            raw_sha256=hashlib.sha256(data).hexdigest(),
            tombstone=raw is None,
            key=key[:1024].decode("utf-8", "replace") if key is not None else None,
        )
        keep = len(data)
        while True:
            dead.raw, dead.raw_encoding = _as_text(data[:keep])
            dead.raw_truncated = keep < len(data)
            if keep == 0 or len(dead.model_dump_json()) <= max_bytes:
                return dead
            keep = keep * max_bytes // (2 * len(dead.model_dump_json())) if keep > 64 else 0

    def raw_bytes(self) -> bytes:
        """The original record value, byte for byte."""
        if self.raw_encoding == "base64":
            return base64.b64decode(self.raw)
        return self.raw.encode("utf-8")
