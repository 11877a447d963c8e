"""Pure online models and the switching hybrid (no I/O: no Kafka, no Redis).

Each candidate source is one class in its own module and one entry of :mod:`models.registry`;
:mod:`models.common` holds what they share (item rows, forward decay, top-k);
:mod:`models.factory` builds the worker's line-up; :mod:`models.checkpoint` reads checkpoints
written before a class moved.
"""

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
