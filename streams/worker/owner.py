"""The model owner: one worker's in-memory models, their checkpoints and the offsets they reflect.

The models learn every event of every partition (the worker's own partitions from the log,
the others' from ``model-updates``); the owner records, per ``topic:partition``, the newest
offset they hold, and the position reached in ``model-updates``; it saves all of it together
to the worker's own checkpoint key every ``checkpoint_interval`` seconds, or every
:data:`CHECKPOINT_SPACING` times as long as the last checkpoint took if that is longer (and on
shutdown), and
restores the newest checkpoint of any worker at start. Kafka offsets are committed right after
a checkpoint, so a restarted worker re-reads what its models may lack, and learns only what
they do not hold.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping

from models.checkpoint import dump_checkpoint_bytes, load_checkpoint_bytes
from models.factory import default_hybrid
from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.settings import Settings

__all__ = ["CHECKPOINT_SPACING", "CHECKPOINT_VERSION", "ModelOwner"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
#: A checkpoint is due no sooner than this many times the last one's duration: large models
#: (300 MB at 100,000 items, a second to pickle and as long to write) are saved less often,
#: so that saving them stays a small share of the worker's time; a restart replays more.
CHECKPOINT_SPACING = 20


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
        #: seconds the last checkpoint took, from its start to its write (0: none yet)
        self.save_seconds = 0.0
        #: held by whatever changes or reads the models across an await: the stream's batch,
        #: the followers, a checkpoint being pickled on its thread, a fresh HTTP ranking
        self.lock = asyncio.Lock()
        #: the checkpoint being written in the background (its result: the offsets it holds)
        self.checkpointing: asyncio.Task[dict[str, int]] | None = None
        #: wall-clock time the last checkpoint was written (None: none yet by this worker)
        self.written_at: float | None = None
        #: why the last checkpoint failed (None: it was written, or none has been tried)
        self.error: str | None = None
        #: checkpoints this worker wrote, and tried to write but failed, since it started
        self.written = 0
        self.failed = 0

    @classmethod
    def from_settings(cls, settings: Settings, store: RedisState, worker: str) -> ModelOwner:
        engine = default_hybrid(
            thresholds=settings.thresholds,
            half_life=settings.half_life,
            sources=settings.sources,
        )
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

    async def save(self) -> dict[str, int]:
        """Checkpoint; returns the offsets it holds. The models are snapshotted under
        :attr:`lock` (whatever changes them waits) and pickled outside it: in a forked child, a
        copy-on-write snapshot (as Redis's BGSAVE), so the stream goes on learning while it
        pickles; on a platform without ``fork``, on a thread, holding the lock. The pickle is
        written to Redis by whoever made it (:meth:`RedisState.write_models
        <state.store.RedisState.write_models>`), never through the event loop nor, from the
        child, through this process's memory. Records how long it took, and counts it
        written or failed."""
        started = time.monotonic()
        try:
            offsets = await self._save()
        except Exception:
            self.failed += 1
            raise
        self.written += 1
        self.saved_at = time.monotonic()
        self.save_seconds = self.saved_at - started
        return offsets

    async def _save(self) -> dict[str, int]:
        async with self.lock:
            offsets, positions = dict(self.offsets), dict(self.update_positions)
            meta = {
                "version": CHECKPOINT_VERSION,
                "worker": self.worker,
                "offsets": offsets,
                "update_positions": positions,
            }

            def write(blob: bytes) -> None:
                self.store.write_models(
                    self.worker, blob, {**meta, "saved_at": time.time(), "bytes": len(blob)}
                )

            if _CAN_FORK:
                child = _fork_checkpoint(self.engine, write)
            else:
                blob = await asyncio.to_thread(dump_checkpoint_bytes, self.engine)
        if _CAN_FORK:
            await asyncio.to_thread(child)
        else:
            await asyncio.to_thread(write, blob)
        return offsets

    async def maybe_checkpoint(
        self, commit: Callable[[Mapping[str, int]], Awaitable[object]] | None
    ) -> None:
        """Call between batches. When the interval has passed (and :data:`CHECKPOINT_SPACING`
        times the last checkpoint's duration), start a checkpoint in the background (the
        stream goes on while it is pickled and written); once one is written, ``commit`` the
        Kafka offsets it holds, not the stream's newer ones: the committed offsets never run
        ahead of the newest checkpoint, so after a crash the replay from them covers all the
        models lack."""
        task = self.checkpointing
        if task is not None:
            if not task.done():
                return
            self.checkpointing = None
            if task.exception() is not None:  # logged and recorded as it ended (_ended)
                self.saved_at = time.monotonic()
                return
            if commit is not None:
                await commit(task.result())
            return
        spacing = max(self.interval, CHECKPOINT_SPACING * self.save_seconds)
        if time.monotonic() - self.saved_at >= spacing:
            self.checkpointing = asyncio.create_task(self.save())
            self.checkpointing.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[dict[str, int]]) -> None:
        """Record how a background checkpoint ended (:attr:`written_at`, :attr:`error`) as
        soon as it ends, batches or not."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self.error, self.written_at = None, time.time()
        else:
            log.error("model checkpoint failed; the next is due after the interval: %s", exc)
            self.error = f"{type(exc).__name__}: {exc}"

    async def finish(self) -> None:
        """The last checkpoint, on shutdown: after the one being written, if any."""
        task, self.checkpointing = self.checkpointing, None
        if task is not None:
            try:
                await task
            except Exception:
                log.exception("model checkpoint failed")
        await self.save()


#: Checkpoints pickle in a forked child where the platform forks (not Windows, not macOS's
#: spawn-only runtimes); the child only pickles and writes the checkpoint, then exits.
_CAN_FORK = hasattr(os, "fork") and sys.platform.startswith("linux")


def _fork_checkpoint(
    engine: HybridRecommender, write: Callable[[bytes], None]
) -> Callable[[], None]:
    """Fork a child that pickles ``engine`` as it is now, passes the pickle to ``write`` and
    exits; returns a blocking call (for a thread) that waits for the child and raises with
    its error if it failed. The child touches nothing of this process but the models: no
    event loop, no log, no connection (another thread may hold their locks at the fork);
    ``write`` opens its own. Its error, if any, comes back through an anonymous temporary
    file (no name: nothing is left behind if either process dies). The child dies with the
    worker (:func:`_die_with`)."""
    with tempfile.TemporaryFile(prefix="recstream-checkpoint-") as f:
        fd = os.dup(f.fileno())  # shared with the child; the named object closes here
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            _die_with(parent)
            write(dump_checkpoint_bytes(engine))
            code = 0
        except BaseException as exc:
            os.write(fd, f"{type(exc).__name__}: {exc}".encode(errors="replace"))
        finally:
            os._exit(code)

    def wait() -> None:
        with os.fdopen(fd, "rb") as errors:
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                errors.seek(0)
                why = errors.read().decode(errors="replace") or f"status {status}"
                raise RuntimeError(f"checkpoint child {pid} failed: {why}")

    return wait


def _die_with(parent: int) -> None:
    """Have the kernel kill this (forked) process when ``parent`` dies, and exit now if it
    already has (Linux's ``PR_SET_PDEATHSIG``: strictly, when the thread that forked ends; the
    worker forks on its event loop's thread, which ends with it). A checkpoint written after
    its worker died could overwrite a newer one of the restarted worker (the same key), whose
    offsets Kafka may already hold committed: the models would then skip the events between."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # died between the fork and the prctl
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
