"""The worker's default model line-up, in one place (the worker and the evaluation share it).

>>> engine = default_hybrid(thresholds=(1, 5, 20))
>>> sorted(engine.sources), engine.policy.names
(['popularity'], ['cold', 'warm', 'active', 'established'])
"""

from __future__ import annotations

from collections.abc import Sequence

from models.hybrid import HybridRecommender, SwitchingPolicy
from models.popularity import DecayedPopularity

__all__ = ["default_hybrid"]


def default_hybrid(
    *,
    thresholds: Sequence[int] = (1, 5, 20),
    half_life: float = 24 * 3600.0,
    seed: int = 42,
) -> HybridRecommender:
    """Every source recstream ships, behind the switching policy with ``thresholds``."""
    sources = {"popularity": DecayedPopularity(half_life=half_life)}
    return HybridRecommender(sources, SwitchingPolicy.from_thresholds(thresholds))
