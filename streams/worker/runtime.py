"""What the agents, the followers and the views share inside one worker process."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from pydantic import ValidationError

from models.events import apply_item
from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.schemas import ItemEvent
from streams.serving.metrics import LiveMetrics
from streams.settings import Settings
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.rebuild import LogReader
from streams.worker.records import BatchOutcome, StateLost

__all__ = ["WorkerRuntime", "explain"]

log = logging.getLogger(__name__)


class WorkerRuntime:
    """What the agents and views share inside one worker process (a
    :class:`~streams.serving.context.WorkerContext`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: this worker among the others (its checkpoint key; the author of its model updates)
        self.worker_id = f"{socket.gethostname()}:{settings.web_port}"
        self.store = RedisState(settings.redis_url, settings.app_id)
        self.models = ModelOwner.from_settings(settings, self.store, self.worker_id)
        self.log = LogReader(settings)
        #: item id -> title, from the catalogue (every worker reads all of ``items``)
        self.titles: dict[str, str] = {}
        self.processor = BatchProcessor(
            settings,
            self.store,
            self.models,
            settings.topic("interactions"),
            log_start=self.log.start_offset,
            worker_id=self.worker_id,
            titles=self.titles,
        )
        #: set once the models are restored: the followers wait for it
        self.restored = asyncio.Event()
        #: set once every catalogue record published before the worker started is applied
        self.catalogue_caught_up = asyncio.Event()
        #: both of the above: the stream waits for it, and /health is not ok without it
        self.ready = asyncio.Event()
        #: catalogue records this worker has read (valid or not)
        self.catalogue_records = 0
        self.metrics = LiveMetrics()
        self.started_at = time.time()
        self.last_batch_at: float | None = None
        #: why the interactions agent cannot get past its batch right now (None: it can)
        self.stuck: str | None = None
        #: events lost for good: older than the log's start when Redis state was rebuilt
        self.unrecoverable = 0
        #: batches dropped because another worker had applied their partition meanwhile
        self.fenced = 0

    async def rebuild(self, lost: StateLost) -> None:
        """Re-apply ``lost``'s partition from the start of the log up to the batch in hand:
        user states, dedup markers and offsets come back exactly; the models learn only what
        they do not hold. No list is published and no dead letter sent again (both were,
        the first time). The applied offset is written with the last chunk only, so an
        interrupted rebuild starts again (its applied events are then duplicates)."""
        self.stuck = str(lost)
        log.error("%s", lost)
        start = await self.log.start_offset(lost.topic, lost.partition)
        if start > 0:
            self.unrecoverable += start
            log.error(
                "%d events before offset %d of %s:%d are no longer in the log: their effect on "
                "user state cannot be recovered",
                start,
                start,
                lost.topic,
                lost.partition,
            )
        chunks = self.log.read(lost.topic, lost.partition, start, lost.first)
        pending: BatchOutcome | None = None
        n = 0
        async for chunk in chunks:
            if pending is not None:
                await self.processor.commit(pending, offsets=False)
            pending = await self.processor.process(chunk, recommend=False)
            n += len(chunk)
        if pending is not None:
            await self.processor.commit(pending)
        log.warning("rebuilt %s:%d from %d records of the log", lost.topic, lost.partition, n)

    @property
    def engine(self) -> HybridRecommender:
        return self.models.engine

    def apply_catalogue(self, value: bytes | None) -> None:
        """One ``items`` record, on every worker: the models and the titles take it (an
        invalid one is dead-lettered once, by the group's ``items`` agent)."""
        self.catalogue_records += 1
        try:
            item = ItemEvent.model_validate_json(value or b"")
        except ValidationError:
            return
        change = item.to_change()
        apply_item(self.engine, change)
        if change.deleted or not item.title:
            self.titles.pop(item.item_id, None)
        else:
            self.titles[item.item_id] = item.title

    @property
    def model_lock(self) -> asyncio.Lock:
        return self.models.lock

    @property
    def checkpoint_loaded(self) -> bool:
        return self.models.loaded

    @property
    def checkpoint_written_at(self) -> float | None:
        return self.models.written_at

    @property
    def checkpoint_error(self) -> str | None:
        return self.models.error

    @property
    def checkpoints(self) -> dict[str, float | int | None]:
        models = self.models
        return {
            "written": models.written,
            "failed": models.failed,
            "seconds": round(models.save_seconds, 3) if models.written else None,
            "written_at": models.written_at,
        }


def explain(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` and of what caused it, innermost last.

    >>> try:
    ...     try:
    ...         raise KeyError("k")
    ...     except KeyError as inner:
    ...         raise RuntimeError("outer") from inner
    ... except RuntimeError as exc:
    ...     explain(exc)
    "RuntimeError: outer <- KeyError: 'k'"
    """
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 5:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)
