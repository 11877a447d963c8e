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
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from models.base import Candidate, Recommender, UserState, interaction_weight
from models.checkpoint import load_checkpoint_bytes
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy
from models.popularity import DecayedPopularity

__all__ = [
    "Candidate",
    "DecayedPopularity",
    "HybridRecommender",
    "Phase",
    "Recommender",
    "SwitchingPolicy",
    "UserState",
    "interaction_weight",
    "load_checkpoint_bytes",
]
