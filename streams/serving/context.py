"""What the HTTP views read from the worker they run in, as a protocol (serving never imports
the worker: ``streams.worker.app.WorkerRuntime`` satisfies this)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.serving.metrics import LiveMetrics
from streams.settings import Settings

__all__ = ["WorkerContext"]


class WorkerContext(Protocol):
    """One worker's settings, store, models and live figures."""

    settings: Settings
    store: RedisState
    metrics: LiveMetrics
    started_at: float
    last_batch_at: float | None
    stuck: str | None  # why the worker cannot get past its batch now (None: it can)
    unrecoverable: int  # events older than the log's start when lost state was rebuilt
    titles: Mapping[str, str]  # item id -> title, from the catalogue

    @property
    def engine(self) -> HybridRecommender:
        """The models as they are now (replaced when a checkpoint is restored)."""
        ...

    @property
    def checkpoint_loaded(self) -> bool: ...

    @property
    def checkpoint_written_at(self) -> float | None:
        """Wall-clock time this worker last wrote a model checkpoint (None: not yet)."""
        ...

    @property
    def checkpoint_error(self) -> str | None:
        """Why the last checkpoint failed (None: it was written, or none was tried yet)."""
        ...

    @property
    def checkpoints(self) -> Mapping[str, float | int | None]:
        """Model checkpoints since the worker started: ``written`` and ``failed`` (counts),
        ``seconds`` (the last written one's duration, start to write; None: none yet) and
        ``written_at`` (its wall-clock time)."""
        ...

    @property
    def model_lock(self) -> asyncio.Lock:
        """Held by whatever changes the models across an await (a checkpoint pickling them on
        a thread): a fresh ranking takes it too."""
        ...
