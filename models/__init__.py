"""Pure online models and the switching hybrid (no I/O: no Kafka, no Redis)."""

from models.base import Candidate, Recommender, UserState, interaction_weight
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
]
