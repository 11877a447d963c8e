"""The model owner: one worker's in-memory models, their checkpoints and the offsets they reflect.

The models learn every event of the partitions this worker reads; the owner records, per
``topic:partition``, the newest offset they hold, saves both together to Redis every
``checkpoint_interval`` seconds (and on shutdown), and restores them at start. Kafka offsets
are committed right after a checkpoint and never on a timer of their own, so a restarted
worker re-reads exactly what the models lack.
"""

from __future__ import annotations

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

    def __init__(self, engine: HybridRecommender, store: RedisState, interval: float) -> None:
        self.engine = engine
        self.store = store
        self.interval = interval
        self.offsets: dict[str, int] = {}
        self.loaded = False
        self.saved_at = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings, store: RedisState) -> ModelOwner:
        engine = default_hybrid(thresholds=settings.thresholds, half_life=settings.half_life)
        return cls(engine, store, settings.checkpoint_interval)

    def holds(self, tp: str, offset: int) -> bool:
        """Whether the models already learned the record at ``offset`` of ``tp``."""
        return offset <= self.offsets.get(tp, -1)

    def advance(self, offsets: Mapping[str, int]) -> None:
        """The models now reflect every record up to ``offsets``."""
        for tp, off in offsets.items():
            if off > self.offsets.get(tp, -1):
                self.offsets[tp] = off

    async def restore(self) -> None:
        """Load the checkpoint, if there is a readable one of this version."""
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
        self.loaded = True
        log.info("models restored from checkpoint at offsets %s", self.offsets)

    async def save(self) -> None:
        blob = dump_checkpoint_bytes(self.engine)
        meta = {
            "version": CHECKPOINT_VERSION,
            "offsets": dict(self.offsets),
            "saved_at": time.time(),
            "bytes": len(blob),
        }
        await self.store.save_models(blob, meta)
        self.saved_at = time.monotonic()

    async def maybe_checkpoint(self, commit: Callable[[], Awaitable[object]] | None) -> None:
        """When the interval has passed, checkpoint, then ``commit`` Kafka's offsets: the commit
        never runs ahead of what the checkpoint reflects (the batch in hand is not acked yet),
        so after a crash the replay from the committed offset covers all the models lack."""
        if time.monotonic() - self.saved_at >= self.interval:
            await self.save()
            if commit is not None:
                await commit()
