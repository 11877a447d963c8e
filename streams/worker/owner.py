"""The model owner: one worker's in-memory models, their checkpoints and the offsets they reflect.

The models learn every event of every partition (the worker's own partitions from the log,
the others' from ``model-updates``); the owner records, per ``topic:partition``, the newest
offset they hold, and the position reached in ``model-updates``; it saves all of it together
to the worker's own checkpoint key every ``checkpoint_interval`` seconds (and on shutdown), and
restores the newest checkpoint of any worker at start. Kafka offsets are committed right after
a checkpoint, so a restarted worker re-reads what its models may lack, and learns only what
they do not hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from models.checkpoint import dump_checkpoint_bytes, load_checkpoint_bytes
from models.factory import default_hybrid
from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.settings import Settings

__all__ = ["CHECKPOINT_VERSION", "ModelOwner"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


class ModelOwner:
    """The hybrid a worker learns into, and the offsets (``topic:partition`` -> newest offset)
    it reflects."""

    def __init__(
        self, engine: HybridRecommender, store: RedisState, interval: float, worker: str = ""
    ) -> None:
        self.engine = engine
        self.store = store
        self.interval = interval
        self.worker = worker
        self.offsets: dict[str, int] = {}
        #: next offset to read per partition of ``model-updates`` (saved with the checkpoint)
        self.update_positions: dict[int, int] = {}
        self.loaded = False
        self.saved_at = time.monotonic()
        #: held by whatever changes or reads the models across an await: the stream's batch,
        #: the followers, a checkpoint being pickled on its thread, a fresh HTTP ranking
        self.lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, store: RedisState, worker: str) -> ModelOwner:
        engine = default_hybrid(thresholds=settings.thresholds, half_life=settings.half_life)
        return cls(engine, store, settings.checkpoint_interval, worker)

    def holds(self, tp: str, offset: int) -> bool:
        """Whether the models already learned the record at ``offset`` of ``tp``."""
        return offset <= self.offsets.get(tp, -1)

    def advance(self, offsets: Mapping[str, int]) -> None:
        """The models now reflect every record up to ``offsets``."""
        for tp, off in offsets.items():
            if off > self.offsets.get(tp, -1):
                self.offsets[tp] = off

    async def restore(self) -> None:
        """Load the newest checkpoint of any worker, if there is a readable one of this
        version: its models reflect every partition up to its offsets."""
        blob, meta = await self.store.load_models()
        if blob is None or meta.get("version") != CHECKPOINT_VERSION:
            log.info("no model checkpoint: models start cold")
            return
        try:
            engine = load_checkpoint_bytes(blob)  # also pickles of classes that have moved
        except Exception:
            log.exception("model checkpoint unreadable: models start cold")
            return
        # learned state from the checkpoint; thresholds, weights and sources from this code
        self.engine = engine.reconfigured(self.engine)
        self.offsets = {k: int(v) for k, v in meta.get("offsets", {}).items()}
        positions = meta.get("update_positions", {})
        self.update_positions = {int(p): int(o) for p, o in positions.items()}
        self.loaded = True
        log.info("models restored from checkpoint at offsets %s", self.offsets)

    async def save(self) -> None:
        """Checkpoint: the models are pickled on a thread, so the event loop keeps serving
        (HTTP, heartbeats) meanwhile; whatever changes the models waits for :attr:`lock`."""
        async with self.lock:
            blob = await asyncio.to_thread(dump_checkpoint_bytes, self.engine)
            offsets, positions = dict(self.offsets), dict(self.update_positions)
        meta = {
            "version": CHECKPOINT_VERSION,
            "worker": self.worker,
            "offsets": offsets,
            "update_positions": positions,
            "saved_at": time.time(),
            "bytes": len(blob),
        }
        await self.store.save_models(self.worker, blob, meta)
        self.saved_at = time.monotonic()

    async def maybe_checkpoint(self, commit: Callable[[], Awaitable[object]] | None) -> None:
        """When the interval has passed, checkpoint, then ``commit`` Kafka's offsets: the commit
        never runs ahead of what the checkpoint reflects (the batch in hand is not acked yet),
        so after a crash the replay from the committed offset covers all the models lack."""
        if time.monotonic() - self.saved_at >= self.interval:
            await self.save()
            if commit is not None:
                await commit()
