"""One batch of interaction records: validate, dedupe, apply, recommend.

Kept apart from Faust so the delivery logic reads top to bottom and tests can drive it with
plain records. No model maths here: the hybrid (``models/``) learns and ranks; Redis keys
live in ``state/``.

Delivery rules (see DESIGN.md, "Guarantees"):
- a record whose offset is at or below the partition's applied offset in Redis was applied
  before a crash: it changes nothing (its user still gets a fresh list);
- an ``event_id`` already in Redis, or twice in one batch, changes nothing;
- a record that fails validation or processing becomes a :class:`DeadLetter`; the caller
  must deliver dead letters *before* :meth:`BatchProcessor.commit` records the offsets;
- the batch's user states, event ids and offsets are written in one MULTI/EXEC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from models.base import Candidate, UserState
from models.events import apply_event, learn_event
from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.schemas import DeadLetter, Interaction, RecItem, Recommendation
from streams.settings import Settings

__all__ = ["BatchOutcome", "BatchProcessor", "Record", "to_recommendation"]

log = logging.getLogger(__name__)


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
    dead: list[DeadLetter] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    hits: int = 0
    # filled by process(), written by commit()
    _users: dict[str, UserState] = field(default_factory=dict)
    _event_ids: list[str] = field(default_factory=list)
    _offsets: dict[str, int] = field(default_factory=dict)  # newest offset per partition
    _applied: dict[str, int] = field(default_factory=dict)  # the ones that move forward


def validation_error_text(exc: ValidationError) -> str:
    """A short, readable reason: 'user_id: Field required; value: Input should be ...'."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def to_recommendation(
    user: UserState, items: Sequence[Candidate], strategy: str, **extra: object
) -> Recommendation:
    return Recommendation(
        user_id=user.user_id,
        items=[
            RecItem(
                item_id=c.item_id, score=round(c.score, 6), sources=c.sources, because=c.because
            )
            for c in items
        ],
        strategy=strategy,
        interactions=user.interactions,
        **extra,  # type: ignore[arg-type]
    )


class BatchProcessor:
    """Applies batches of ``interactions`` records to Redis state and the in-memory models."""

    def __init__(
        self, settings: Settings, store: RedisState, engine: HybridRecommender, topic: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.topic = topic
        #: offsets (``topic:partition``) the in-memory models already reflect (checkpoint)
        self.model_offsets: dict[str, int] = {}

    def tp(self, partition: int) -> str:
        return f"{self.topic}:{partition}"

    def new_user(self, user_id: str, data: dict | None = None) -> UserState:
        caps = {"max_history": self.settings.history}
        return UserState.from_dict(data, **caps) if data else UserState(user_id, **caps)

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        out = BatchOutcome()
        stats = {"events": 0, "dead": 0, "duplicates": 0, "replayed": 0, "hits": 0}
        parsed: list[tuple[Record, Interaction, str]] = []
        for rec in records:
            tp = self.tp(rec.partition)
            out._offsets[tp] = max(out._offsets.get(tp, -1), rec.offset)
            try:
                ev = Interaction.model_validate_json(rec.value or b"")
            except ValidationError as exc:
                out.dead.append(self._dead(rec, validation_error_text(exc)))
                continue
            except ValueError as exc:  # pragma: no cover - pydantic wraps JSON errors
                out.dead.append(self._dead(rec, f"invalid JSON: {exc}"))
                continue
            eid = ev.event_id or f"{tp}:{rec.offset}"
            parsed.append((rec, ev, eid))

        view = await self.store.load_batch(
            {ev.user_id for _, ev, _ in parsed}, {eid for _, _, eid in parsed}, out._offsets
        )
        # Records at or below the applied offset were handled before a crash: DLQ included.
        out.dead = [d for d in out.dead if d.offset > view.applied.get(self.tp(d.partition), -1)]
        stats["dead"] = len(out.dead)
        # a redelivered batch must never move a partition's applied offset backwards
        out._applied = {
            tp: off for tp, off in out._offsets.items() if off > view.applied.get(tp, -1)
        }
        seen_ids = set(view.duplicates)
        relearned: set[str] = set()
        newest: dict[str, tuple[str, float | None]] = {}
        before: dict[str, str | None] = {}  # each user's phase as loaded (None: new user)
        now = time.time()
        for rec, ev, eid in parsed:
            tp = self.tp(rec.partition)
            user = out._users.get(ev.user_id)
            if user is None:
                user = self.new_user(ev.user_id, view.users[ev.user_id])
                out._users[ev.user_id] = user
                before[ev.user_id] = (
                    self.engine.phase(user).name if view.users[ev.user_id] else None
                )
            learned = rec.offset <= self.model_offsets.get(tp, -1)
            event = ev.to_event(rec.timestamp or now)
            below = rec.offset <= view.applied.get(tp, -1)
            if below and eid not in view.duplicates:
                # Below the applied offset yet never applied (a record's event id is written
                # with its offset, atomically): the log was recreated (new topic, in-memory
                # broker restarted) while Redis kept its offsets. A new record: process it.
                stats["relogged"] = stats.get("relogged", 0) + 1
                learned = below = False
            if below:
                # Applied to Redis before a crash; the models (restored from an older
                # checkpoint) may still lack it. Their context is the user's current state.
                if not learned and eid not in relearned:
                    learn_event(self.engine, user, event)
                relearned.add(eid)
                stats["replayed"] += 1
                newest[ev.user_id] = (eid, rec.timestamp)
                continue
            if eid in seen_ids:
                stats["duplicates"] += 1
                continue
            seen_ids.add(eid)
            phase_now = self.engine.phase(user).name
            try:
                hit = apply_event(
                    self.engine, user, event, idle_gap=self.settings.session_gap, learn=not learned
                )
            except Exception as exc:  # one bad event must not stop the stream
                log.exception("event at %s:%s failed", tp, rec.offset)
                out.dead.append(self._dead(rec, f"processing failed: {exc!r}"))
                stats["dead"] += 1
                continue
            stats["events"] += 1
            stats["hits"] += hit
            stats[f"events:{phase_now}"] = stats.get(f"events:{phase_now}", 0) + 1
            stats[f"hits:{phase_now}"] = stats.get(f"hits:{phase_now}", 0) + hit
            out._event_ids.append(eid)
            newest[ev.user_id] = (eid, rec.timestamp)

        for user_id, (eid, arrived) in newest.items():
            user = out._users[user_id]
            phase = self.engine.phase(user)
            items = self.engine.recommend(user, k=self.settings.k, exclude=user.seen)
            user.last_served = [c.item_id for c in items]
            latency = (time.time() - arrived) * 1000.0 if arrived else None
            out.recommendations.append(
                to_recommendation(
                    user,
                    items,
                    phase.name,
                    event_id=eid,
                    latency_ms=round(latency, 3) if latency is not None else None,
                )
            )
        for user_id, was in before.items():  # users per phase, kept as +1/-1 moves
            now_phase = self.engine.phase(out._users[user_id]).name
            if was != now_phase:
                stats[f"users:{now_phase}"] = stats.get(f"users:{now_phase}", 0) + 1
                if was is not None:
                    stats[f"users:{was}"] = stats.get(f"users:{was}", 0) - 1
        out.stats = stats
        out.hits = stats["hits"]
        return out

    async def commit(self, out: BatchOutcome) -> None:
        """Write the batch's effects atomically. Call after dead letters are delivered."""
        await self.store.commit_batch(
            {uid: u.to_dict() for uid, u in out._users.items()},
            out._event_ids,
            out._applied,
            self.settings.dedup_ttl,
            {**out.stats, "recommendations": len(out.recommendations)},
        )
        for tp, off in out._offsets.items():
            if off > self.model_offsets.get(tp, -1):
                self.model_offsets[tp] = off

    def _dead(self, rec: Record, error: str) -> DeadLetter:
        return DeadLetter.of(rec.value, error, self.topic, rec.partition, rec.offset, rec.key)
