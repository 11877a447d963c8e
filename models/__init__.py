"""Pure online models and the switching hybrid (no I/O: no Kafka, no Redis).

Each candidate source is one class in its own module and one entry of :mod:`models.registry`;
:mod:`models.common` holds what they share (item rows, forward decay, top-k);
:mod:`models.factory` builds the worker's line-up; :mod:`models.checkpoint` reads checkpoints
written before a class moved.

BLAS threads: the models' matrix products are small (a batch of users or events against a few
hundred rows), and OpenBLAS's worker threads only slow them down, the more so while EASE
solves on its background thread: on the project's 2-core machine a 64x128 by 128x564 product
took 180 us with one thread and 976 us with two (8.9 ms against 0.43 ms during a solve), and
the solve itself 0.33 s against 0.53 s (docs/PERFORMANCE.md). So unless the environment says
otherwise, OpenBLAS runs one thread; this must happen before numpy is first imported.

Garbage collection: learned models are millions of long-lived containers that make almost no
cyclic garbage, so a process that learns them (the worker, ``recstream evaluate``) calls
:func:`collect_garbage_rarely`: with Python's thresholds a full collection (~85 ms at 10,000
items) ran every few seconds and found ~30 objects per 10,000 events, ~10 % of the CPU.
"""

import gc
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from models.base import Candidate, Recommender, UserState, interaction_weight
from models.checkpoint import load_checkpoint_bytes
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy
from models.popularity import DecayedPopularity

__all__ = [
    "GC_THRESHOLDS",
    "Candidate",
    "DecayedPopularity",
    "HybridRecommender",
    "Phase",
    "Recommender",
    "SwitchingPolicy",
    "UserState",
    "collect_garbage_rarely",
    "interaction_weight",
    "load_checkpoint_bytes",
]

#: The garbage collector's thresholds in a process that learns models (Python's: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def collect_garbage_rarely() -> None:
    """Set this process's garbage-collector thresholds to :data:`GC_THRESHOLDS`."""
    gc.set_threshold(*GC_THRESHOLDS)
