"""Worker checkpoints: the pickled hybrid, readable after its classes moved between modules.

A checkpoint names each class by module and name. When a class moves (``models.session`` was
split into ``models.transitions`` and ``models.sknn``), :data:`MOVED` maps its old place to the
new one and :func:`load_checkpoint_bytes` reads old and new checkpoints alike. A moved class
keeps its attribute names, so an old checkpoint's state fits it as it is; a class that gains
an attribute gives it a class-level default or fills it in ``__setstate__``.

>>> from models.transitions import TransitionModel
>>> model = load_checkpoint_bytes(dump_checkpoint_bytes(TransitionModel(max_next=7)))
>>> model.max_next
7
>>> unpickler = CheckpointUnpickler(io.BytesIO(b""))
>>> unpickler.find_class("models.session", "SessionKNN").__module__
'models.sknn'
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["MOVED", "CheckpointUnpickler", "dump_checkpoint_bytes", "load_checkpoint_bytes"]

#: ``(old module, class name) -> (new module, class name)`` of every model class that moved.
MOVED: dict[tuple[str, str], tuple[str, str]] = {
    ("models.popularity", "CohortPopularity"): ("models.cohort", "CohortPopularity"),
    ("models.session", "TransitionModel"): ("models.transitions", "TransitionModel"),
    ("models.session", "SessionKNN"): ("models.sknn", "SessionKNN"),
    ("models.mf", "ImplicitMF"): ("models.implicit_mf", "ImplicitMF"),
    ("models.mf", "RatingMF"): ("models.rating_mf", "RatingMF"),
}


class CheckpointUnpickler(pickle.Unpickler):
    """An unpickler that finds a moved class (:data:`MOVED`) at its new place."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(*MOVED.get((module, name), (module, name)))


def load_checkpoint_bytes(blob: bytes) -> Any:
    """The object pickled in ``blob`` (a checkpoint), whichever module layout wrote it."""
    return CheckpointUnpickler(io.BytesIO(blob)).load()


def dump_checkpoint_bytes(engine: Any) -> bytes:
    """``engine`` as checkpoint bytes (the highest pickle protocol)."""
    return pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
