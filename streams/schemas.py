"""Every message recstream reads or writes, as pydantic v2 models, in one place.

>>> ev = Interaction.model_validate_json(b'{"user_id": "u1", "item_id": "i9", "timestamp": 0}')
>>> ev.type, ev.timestamp
('click', 0.0)
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.base import Candidate, UserState
from models.events import Event, ItemChange

__all__ = [
    "DeadLetter",
    "EventType",
    "Interaction",
    "ItemEvent",
    "RecItem",
    "Recommendation",
]

EventType = Literal["view", "click", "add_to_cart", "purchase", "like", "dislike", "rating"]


def _epoch_seconds(value: object) -> object:
    """ISO-8601 strings and epoch seconds (or milliseconds, when clearly so) -> float seconds."""
    if value is None or isinstance(value, bool):
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


class Recommendation(BaseModel):
    """A fresh list for one user: the value on topic ``recommendations`` (key = user_id)."""

    user_id: str
    items: list[RecItem]
    strategy: str
    interactions: int
    event_id: str | None = None
    generated_at: float = Field(default_factory=time.time)
    latency_ms: float | None = None

    @classmethod
    def of(
        cls,
        user: UserState,
        items: Sequence[Candidate],
        strategy: str,
        event_id: str | None = None,
        latency_ms: float | None = None,
    ) -> Recommendation:
        """The list ``items`` served to ``user`` by the phase ``strategy``."""
        return cls(
            user_id=user.user_id,
            items=[
                RecItem(
                    item_id=c.item_id, score=round(c.score, 6), sources=c.sources, because=c.because
                )
                for c in items
            ],
            strategy=strategy,
            interactions=user.interactions,
            event_id=event_id,
            latency_ms=latency_ms,
        )


class DeadLetter(BaseModel):
    """A record that could not be processed: the value on topic ``interactions.dlq``.

    ``raw`` holds the original bytes losslessly: as text when they are valid UTF-8
    (``raw_encoding`` = "utf-8"), otherwise base64 (``raw_encoding`` = "base64").
    """

    error: str
    topic: str
    partition: int
    offset: int
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
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
    ) -> DeadLetter:
        data = raw or b""
        try:
            text, enc = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, enc = base64.b64encode(data).decode("ascii"), "base64"
        return cls(
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            raw=text,
            raw_encoding=enc,  # type: ignore[arg-type]
            key=key.decode("utf-8", "replace") if key is not None else None,
        )

    def raw_bytes(self) -> bytes:
        """The original record value, byte for byte."""
        if self.raw_encoding == "base64":
            return base64.b64decode(self.raw)
        return self.raw.encode("utf-8")
