"""One batch of interaction records: validate, dedupe, apply, recommend.

Kept apart from Faust so the delivery logic reads top to bottom and tests can drive it with
plain records. No model maths here: the hybrid (``models/``) learns and ranks; Redis keys
live in ``state/``.

Delivery rules (see DESIGN.md, "Guarantees"):
- a record whose offset is at or below the partition's applied offset in Redis was handled
  before a crash: it changes nothing (its user still gets a fresh list); models restored from
  an older checkpoint learn it only if it was applied then (its dedup marker names its place
  in the log), never a record that was a duplicate;
- an event already applied (its ``event_id`` for its user, or an id-less record's place in
  the log), or twice in one batch, changes nothing;
- a record that fails validation, has a null value (tombstone), or an event time more than
  ``max_skew`` ahead of its arrival or before 1990 becomes a :class:`DeadLetter`; the caller
  must deliver dead letters *before* :meth:`commit`; a valid event a model fails to learn is
  logged and applied all the same (the other models and the user's state take it);
- the models record each record they learn at once (:meth:`ModelOwner.advance`), so a batch
  retried after a failed Redis write or publish is not learned twice;
- the batch's user states, dedup markers and offsets are written in one atomic script, only
  if its partitions' offsets and its users are still as the batch read them (the fence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from models.events import Event, apply_events, learn_event
from models.hybrid import HybridRecommender
from state.stats import BatchStats
from state.store import BatchView, RedisState, user_state
from streams.schemas import (
    DeadLetter,
    Interaction,
    encode,
    event_time_error,
    recommendation_message,
    validation_error_text,
)
from streams.settings import Settings
from streams.worker.owner import ModelOwner
from streams.worker.records import (
    BatchOutcome,
    Record,
    StateLost,
    dedup_key,
)
from streams.worker.replication import UpdateBuilder

__all__ = ["BatchProcessor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Valid:
    """A record that parsed: its interaction, its event id (explicit, or implicit: its
    ``topic:partition:offset``), its dedup key and where it sits in the log."""

    record: Record
    interaction: Interaction
    event_id: str
    dedup: str
    origin: str


class BatchProcessor:
    """Applies batches of ``interactions`` records to Redis state and the in-memory models."""

    def __init__(
        self,
        settings: Settings,
        store: RedisState,
        models: ModelOwner,
        topic: str,
        log_start: Callable[[str, int], Awaitable[int]] | None = None,
        worker_id: str = "",
        titles: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self.topic = topic
        #: the oldest offset the log holds for a partition (None: never check for lost state)
        self.log_start = log_start
        self.worker_id = worker_id
        self.titles = titles if titles is not None else {}

    @property
    def engine(self) -> HybridRecommender:
        return self.models.engine

    def tp(self, partition: int) -> str:
        return f"{self.topic}:{partition}"

    async def process(self, records: Sequence[Record], *, recommend: bool = True) -> BatchOutcome:
        """Validate, dedupe and apply ``records``; build each touched user's list (unless
        ``recommend`` is false). Nothing is written: deliver ``dead`` first, then
        :meth:`commit`. Raises :class:`StateLost` when Redis lost the partition's state."""
        out = BatchOutcome(stats=BatchStats(batches=1))
        valid = self._parse(records, out)
        view = await self.store.load_batch(
            {v.interaction.user_id for v in valid}, {v.dedup for v in valid}, out.offsets
        )
        await self._check_state(records, view)
        # Records at or below the applied offset were handled before a crash: DLQ included.
        out.dead = [d for d in out.dead if d.offset > view.applied.get(self.tp(d.partition), -1)]
        out.stats.dead = len(out.dead)
        # a redelivered batch must never move a partition's applied offset backwards
        out.applied = {tp: o for tp, o in out.offsets.items() if o > view.applied.get(tp, -1)}
        out.read_offsets = {tp: view.applied.get(tp) for tp in out.offsets}
        out.versions = dict(view.versions)
        before: dict[str, str | None] = {}  # each user's phase as loaded (None: new user)
        for uid in dict.fromkeys(v.interaction.user_id for v in valid):
            out.users[uid] = user_state(uid, view.users[uid], self.settings.history)
            before[uid] = self.engine.phase(out.users[uid]).name if view.users[uid] else None
        learned = UpdateBuilder(self.topic, self.worker_id)
        async with self.models.lock:  # no await inside: a checkpoint sees all or none of it
            newest = self._apply(valid, view, out, learned)
            if recommend:
                self._recommend(newest, out)
            out.model_cpu = self.engine.take_cpu_seconds()
        ranges: dict[int, tuple[int, int]] = {}
        for rec in records:
            first, last = ranges.get(rec.partition, (rec.offset, rec.offset))
            ranges[rec.partition] = (min(first, rec.offset), max(last, rec.offset))
        out.updates = learned.close(ranges)
        for uid, was in before.items():
            out.stats.move_user(was, self.engine.phase(out.users[uid]).name)
        return out

    async def _check_state(self, records: Sequence[Record], view: BatchView) -> None:
        if self.log_start is None:
            return
        first: dict[int, int] = {}
        for rec in records:
            first.setdefault(rec.partition, rec.offset)
        for partition, offset in first.items():
            if self.tp(partition) in view.applied or offset == 0:
                continue
            if offset > await self.log_start(self.topic, partition):
                raise StateLost(self.topic, partition, offset)

    def _parse(self, records: Sequence[Record], out: BatchOutcome) -> list[_Valid]:
        """The records that are valid interactions with a trustworthy time; the others become
        dead letters (a null value as a tombstone)."""
        valid = []
        now = time.time()
        for rec in records:
            tp = self.tp(rec.partition)
            out.offsets[tp] = max(out.offsets.get(tp, -1), rec.offset)
            if rec.value is None:
                out.dead.append(self._dead(rec, "tombstone: the record has no value (null)"))
                continue
            try:
                ev = Interaction.model_validate_json(rec.value)
            except ValidationError as exc:
                out.dead.append(self._dead(rec, validation_error_text(exc)))
                continue
            arrival = rec.timestamp or now
            late = event_time_error(ev.timestamp, arrival=arrival, max_skew=self.settings.max_skew)
            if late is not None:
                out.dead.append(self._dead(rec, late))
                continue
            if rec.key is not None and rec.key != ev.user_id.encode():
                out.stats.odd_keys += 1  # processed under its user_id all the same
            origin = f"{tp}:{rec.offset}"
            dedup = dedup_key(ev.user_id, ev.event_id, origin)
            valid.append(_Valid(rec, ev, ev.event_id or origin, dedup, origin))
        return valid

    def _apply(
        self, valid: list[_Valid], view: BatchView, out: BatchOutcome, learned: UpdateBuilder
    ) -> dict[str, tuple[str, float | None]]:
        """Sort the batch's records (replayed, duplicate, new) and apply the new ones to their
        users and the models; returns, per touched user, the event id and arrival time of
        their newest event."""
        seen = set(view.markers)
        relearned: set[str] = set()
        newest: dict[str, tuple[str, float | None]] = {}
        fresh: list[tuple[_Valid, Event]] = []
        now = time.time()
        for v in valid:
            rec, tp = v.record, self.tp(v.record.partition)
            user = out.users[v.interaction.user_id]
            event = v.interaction.to_event(rec.timestamp or now)
            marker = view.markers.get(v.dedup)  # where this event was applied, if it was
            if rec.offset <= view.applied.get(tp, -1):
                if marker is not None:
                    # Handled before a crash. Applied here (not a duplicate then)? The models,
                    # restored from an older checkpoint, may lack it: their context is the
                    # user's current state. A duplicate then is nothing to learn now.
                    if marker == v.origin and v.dedup not in relearned:
                        learned.add(rec.partition, rec.offset, user, event, advance=False)
                        if not self.models.holds(tp, rec.offset):
                            learn_event(self.engine, user, event)
                        self.models.advance({tp: rec.offset})
                    relearned.add(v.dedup)
                    out.stats.replayed += 1
                    newest[user.user_id] = (v.event_id, rec.timestamp)
                    continue
                # Below the applied offset yet never applied (an event's marker is written
                # with its offset, atomically): the log was recreated (new topic, in-memory
                # broker restarted) while Redis kept its offsets. A new record: process it.
                out.stats.relogged += 1
            if v.dedup in seen:
                out.stats.duplicates += 1
                continue
            seen.add(v.dedup)
            learned.touch(rec.partition, user)  # the context before the user's first event
            fresh.append((v, event))
        self._apply_new(fresh, out, learned, newest)
        return newest

    def _apply_new(
        self,
        fresh: list[tuple[_Valid, Event]],
        out: BatchOutcome,
        learned: UpdateBuilder,
        newest: dict[str, tuple[str, float | None]],
    ) -> None:
        """The batch's new events, in order, through :func:`models.events.apply_events`: each
        user's state takes them one by one, the models learn them together (those they do not
        hold already). An event a model fails to learn is logged; its user's state holds it."""
        policy, pending = self.engine.policy, dict.fromkeys(out.users, 0)
        phases = []
        for v, _ in fresh:  # each user's phase when the event arrived
            uid = v.interaction.user_id
            phases.append(policy.phase_for(out.users[uid].interactions + pending[uid]).name)
            pending[uid] += 1
        flags = [
            not self.models.holds(self.tp(v.record.partition), v.record.offset) for v, _ in fresh
        ]
        failed: dict[int, Exception] = {}
        hits = apply_events(
            self.engine,
            out.users,
            [event for _, event in fresh],
            idle_gap=self.settings.session_gap,
            learn=flags,
            failed=failed,
        )
        for i, ((v, event), phase, hit) in enumerate(zip(fresh, phases, hits, strict=True)):
            rec = v.record
            if i in failed:
                log.error(
                    "event at %s:%s not learned: %r", self.tp(rec.partition), rec.offset, failed[i]
                )
            learned.add(rec.partition, rec.offset, out.users[event.user_id], event, advance=True)
            # the models hold it now, whatever becomes of this batch's Redis write: a retried
            # batch must not teach them the same record twice
            self.models.advance({self.tp(rec.partition): rec.offset})
            out.stats.count_event(phase, hit)
            out.markers[v.dedup] = v.origin
            newest[event.user_id] = (v.event_id, rec.timestamp)

    def _recommend(self, newest: dict[str, tuple[str, float | None]], out: BatchOutcome) -> None:
        """One fresh list per user the batch touched, after their newest event: every user of
        the batch ranked at once (:meth:`HybridRecommender.recommend_batch`)."""
        users = [out.users[user_id] for user_id in newest]
        lists = self.engine.recommend_batch(users, self.settings.k, [u.seen for u in users])
        for user, items in zip(users, lists, strict=True):
            eid, arrived = newest[user.user_id]
            user.last_served = [c.item_id for c in items]
            latency = (time.time() - arrived) * 1000.0 if arrived else None
            rec = recommendation_message(
                user,
                items,
                self.engine.phase(user).name,
                event_id=eid,
                latency_ms=round(latency, 3) if latency is not None else None,
                titles=self.titles,
            )
            out.recommendations.append(rec)
            out.published[user.user_id] = encode(rec)
        out.stats.recommendations = len(out.recommendations)

    async def commit(self, out: BatchOutcome, *, offsets: bool = True) -> None:
        """Write the batch's effects atomically. Call after dead letters are delivered.
        ``offsets=False`` leaves the partitions' applied offsets as they are (a rebuild writes
        them with its last chunk, so that an interrupted rebuild starts again).

        Fenced: raises :class:`~state.store.Fenced` when another worker applied records of a
        partition of this batch since it was read (this worker lost the partition: drop the
        batch), :class:`~state.store.UserConflict` when a user's state changed meanwhile (their
        events reach two partitions: process the batch again)."""
        await self.store.commit_batch(
            {uid: u.to_dict() for uid, u in out.users.items()},
            out.markers,
            out.applied if offsets else {},
            self.settings.dedup_ttl,
            out.stats,
            versions=out.versions,
            expected=out.read_offsets,
            lists=out.published,
        )
        self.models.advance(out.offsets)

    def _dead(self, rec: Record, error: str) -> DeadLetter:
        return DeadLetter.of(rec.value, error, self.topic, rec.partition, rec.offset, rec.key)
