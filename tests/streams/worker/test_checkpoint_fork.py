"""A model checkpoint does not stop the stream: the models are pickled outside their lock, as
they were when the checkpoint began (against a real Redis)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

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


async def pickling_checkpoint(
    store: RedisState, item: str
) -> tuple[ModelOwner, HybridRecommender, asyncio.Task[dict[str, int]]]:
    """Worker ``w``'s owner of a popularity that learned ``item`` and takes a second to
    pickle, its checkpoint begun 0.3 s ago (pickling): the owner, its models, the save."""
    engine = HybridRecommender({"popularity": SlowToPickle()}, fallback="popularity")
    engine.sources["popularity"].learn_one(None, item, ts=0.0)  # type: ignore[arg-type]
    owner = ModelOwner(engine, store, interval=60.0, worker="w")
    saving = asyncio.create_task(owner.save())
    await asyncio.sleep(0.3)
    return owner, engine, saving


@pytest.mark.skipif(not owner_module._CAN_FORK, reason="checkpoints pickle on a thread here")
def test_a_checkpoint_frees_the_models_while_it_pickles_what_they_were_when_it_began(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        store = RedisState(settings.redis_url, settings.app_id)
        owner, engine, saving = await pickling_checkpoint(store, "before")
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


def test_a_checkpoint_that_took_long_is_followed_by_the_next_only_after_proportionally_longer(
    tmp_path: Path,
) -> None:
    """Large models are saved less often: the next checkpoint is due after the interval or
    CHECKPOINT_SPACING times the last one's duration, whichever is longer."""

    class SlowStore:
        """Takes 0.2 s to write; counts its writes in a file (they happen in the forked
        child where the platform forks)."""

        def write_models(self, worker: str, blob: bytes, meta: dict[str, Any]) -> None:
            time.sleep(0.2)
            with (tmp_path / "writes").open("a") as f:
                f.write("x")

        @property
        def saved(self) -> int:
            path = tmp_path / "writes"
            return len(path.read_text()) if path.exists() else 0

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


@pytest.mark.skipif(not owner_module._CAN_FORK, reason="checkpoints pickle on a thread here")
def test_a_checkpoint_is_written_to_redis_while_the_event_loop_is_busy(
    settings: Settings,
) -> None:
    """The checkpoint's bytes (300 MB at 100,000 items) never pass through the worker's event
    loop nor its memory: the forked child that pickled them writes them on a connection of
    its own, so a long batch holding the loop does not hold up the checkpoint, nor the
    checkpoint the batch."""
    probe = redis.Redis.from_url(settings.redis_url)
    key = RedisState(settings.redis_url, settings.app_id).models_key + ":w"

    async def scenario() -> None:
        store = RedisState(settings.redis_url, settings.app_id)
        owner, _, saving = await pickling_checkpoint(store, "x")
        assert (owner.written, owner.failed) == (0, 0)  # not counted before it is written
        deadline = time.monotonic() + 10.0
        while probe.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.01)  # a long batch: the event loop runs nothing else meanwhile
        written = probe.get(key)
        await saving
        assert written is not None, "the checkpoint waited for the event loop"
        assert load_checkpoint_bytes(written).popularity("x") == 1.0
        assert json.loads(probe.get(key + ":meta"))["bytes"] == len(written)
        assert (owner.written, owner.failed) == (1, 0) and owner.save_seconds >= 1.0
        await store.close()
        probe.close()

    asyncio.run(scenario())


def test_a_checkpoint_that_cannot_be_written_fails_with_the_reason_and_commits_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A checkpoint Redis refuses (here: nobody listens) is logged with the reason and its
    offsets are not committed: Kafka's position stays behind the last checkpoint written."""
    from streams.tools.embedded import free_port

    async def scenario() -> None:
        store = RedisState(f"redis://127.0.0.1:{free_port()}/0", "nowhere")
        engine = HybridRecommender({"popularity": DecayedPopularity()}, fallback="popularity")
        owner = ModelOwner(engine, store, interval=0.01, worker="w")
        owner.offsets = {"interactions:0": 41}
        committed: list[Any] = []

        async def commit(offsets: Any) -> None:
            committed.append(offsets)

        owner.saved_at -= 1.0
        await owner.maybe_checkpoint(commit)
        assert owner.checkpointing is not None
        done, _ = await asyncio.wait([owner.checkpointing], timeout=30.0)
        assert done, "the checkpoint waits for Redis instead of failing"
        await owner.maybe_checkpoint(commit)  # takes the failed checkpoint's result
        assert committed == [] and owner.checkpointing is None
        assert (owner.written, owner.failed) == (0, 1)  # counted (/stats, /metrics)
        await store.close()

    with caplog.at_level("ERROR", logger="streams.worker.owner"):
        asyncio.run(scenario())
    assert "model checkpoint failed" in caplog.text and "ConnectionError" in caplog.text


_KILLED_MID_CHECKPOINT = """
import asyncio, os, signal, sys, time
from models.hybrid import HybridRecommender
from models.popularity import DecayedPopularity
from state.store import RedisState
from streams.worker.owner import ModelOwner

class SlowToPickle(DecayedPopularity):
    def __getstate__(self):
        time.sleep(1.5)
        return self.__dict__.copy()

async def main():
    engine = HybridRecommender({"popularity": SlowToPickle()}, fallback="popularity")
    owner = ModelOwner(engine, RedisState(sys.argv[1], sys.argv[2]), interval=60.0, worker="w")
    saving = asyncio.create_task(owner.save())
    await asyncio.sleep(0.3)  # the child is pickling
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


@pytest.mark.skipif(not owner_module._CAN_FORK, reason="checkpoints pickle on a thread here")
def test_a_checkpoint_child_dies_with_its_worker_and_writes_nothing_after_it(
    settings: Settings,
) -> None:
    """A worker killed while its child pickles takes the child with it: a checkpoint landing
    after the worker's death could overwrite a newer one of its restarted self (same key),
    whose offsets Kafka may hold committed already, and the models would then skip the
    events in between after the next restart."""
    root = Path(__file__).resolve().parents[3]
    worker = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_CHECKPOINT, settings.redis_url, settings.app_id],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=60,
    )
    assert worker.returncode == -signal.SIGKILL
    time.sleep(2.5)  # the child would have finished its 1.5 s pickle and written by now
    probe = redis.Redis.from_url(settings.redis_url)
    key = RedisState(settings.redis_url, settings.app_id).models_key + ":w"
    assert probe.get(key) is None, "the orphaned child wrote its checkpoint"
    probe.close()
