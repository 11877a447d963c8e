"""A model checkpoint does not stop the stream: the models are pickled outside their lock, as
they were when the checkpoint began (against a real Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from models.checkpoint import load_checkpoint_bytes
from models.hybrid import HybridRecommender
from models.popularity import DecayedPopularity
from state.store import RedisState
from streams.settings import Settings
from streams.worker import owner as owner_module
from streams.worker.owner import ModelOwner

pytestmark = pytest.mark.integration


class SlowToPickle(DecayedPopularity):
    """Popularity that takes a second to pickle (as a large model does)."""

    def __getstate__(self) -> dict[str, Any]:
        time.sleep(1.0)
        return self.__dict__.copy()


@pytest.mark.skipif(not owner_module._CAN_FORK, reason="checkpoints pickle on a thread here")
def test_a_checkpoint_frees_the_models_while_it_pickles_what_they_were_when_it_began(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        store = RedisState(settings.redis_url, settings.app_id)
        engine = HybridRecommender({"popularity": SlowToPickle()}, fallback="popularity")
        engine.sources["popularity"].learn_one(None, "before", ts=0.0)  # type: ignore[arg-type]
        owner = ModelOwner(engine, store, interval=60.0, worker="w")
        saving = asyncio.create_task(owner.save())
        await asyncio.sleep(0.3)  # the checkpoint has begun and is pickling
        assert not saving.done()
        # free long before the pickle's second is over: the stream learns meanwhile
        await asyncio.wait_for(owner.lock.acquire(), timeout=0.5)
        engine.sources["popularity"].learn_one(None, "after", ts=0.0)  # type: ignore[arg-type]
        owner.lock.release()
        await saving
        blob, _ = await store.load_models()
        saved = load_checkpoint_bytes(blob)
        assert saved.popularity("before") == 1.0 and saved.popularity("after") == 0.0
        await store.close()

    asyncio.run(scenario())


def test_a_checkpoint_that_took_long_is_followed_by_the_next_only_after_proportionally_longer() -> (
    None
):
    """Large models are saved less often: the next checkpoint is due after the interval or
    CHECKPOINT_SPACING times the last one's duration, whichever is longer."""

    class SlowStore:
        saved = 0

        async def save_models(self, worker: str, blob: bytes, meta: dict[str, Any]) -> None:
            await asyncio.sleep(0.2)
            self.saved += 1

    async def scenario() -> None:
        store = SlowStore()
        owner = ModelOwner(HybridRecommender({"p": DecayedPopularity()}), store, interval=0.01)  # type: ignore[arg-type]
        owner.saved_at -= 1.0
        await owner.maybe_checkpoint(None)
        assert owner.checkpointing is not None
        await owner.checkpointing
        await owner.maybe_checkpoint(None)  # takes the written checkpoint's result
        assert store.saved == 1 and owner.save_seconds >= 0.2
        await asyncio.sleep(0.05)  # the interval has passed, not 20 x 0.2 s
        await owner.maybe_checkpoint(None)
        assert store.saved == 1 and owner.checkpointing is None
        owner.saved_at -= owner_module.CHECKPOINT_SPACING * owner.save_seconds
        await owner.maybe_checkpoint(None)
        assert owner.checkpointing is not None
        await owner.checkpointing
        assert store.saved == 2

    asyncio.run(scenario())


def test_the_stream_goes_on_while_a_checkpoint_is_written_and_commits_only_what_it_holds(
    settings: Settings,
) -> None:
    """A checkpoint that takes a second to pickle does not hold up the batch that found it
    due; the offsets committed after it are the ones it holds, not the stream's newer ones
    (a crash then replays what the checkpoint lacks)."""

    async def scenario() -> None:
        store = RedisState(settings.redis_url, settings.app_id)
        engine = HybridRecommender({"popularity": SlowToPickle()}, fallback="popularity")
        owner = ModelOwner(engine, store, interval=0.01, worker="w")
        owner.advance({"interactions:0": 4})
        owner.saved_at -= 1.0
        committed: list[dict[str, int]] = []

        async def commit(offsets: Any = None) -> None:
            committed.append(dict(offsets or {}))

        started = time.monotonic()
        await owner.maybe_checkpoint(commit)
        assert time.monotonic() - started < 0.5  # not the pickle's second
        await asyncio.sleep(0.2)  # it has snapshotted the models and is pickling them
        async with owner.lock:
            owner.advance({"interactions:0": 9})  # the stream learns on meanwhile
        while owner.checkpointing is not None and not owner.checkpointing.done():
            await owner.maybe_checkpoint(commit)  # nothing to commit while it is written
            assert committed == []
            await asyncio.sleep(0.05)
        await owner.maybe_checkpoint(commit)
        assert committed == [{"interactions:0": 4}]
        _, meta = await store.load_models()
        assert meta["offsets"] == {"interactions:0": 4}
        await owner.finish()  # the last one, on shutdown: what the models hold now
        _, meta = await store.load_models()
        assert meta["offsets"] == {"interactions:0": 9}
        await store.delete_all()
        await store.close()

    asyncio.run(scenario())
