"""The worker's model line-up, in one place (the worker and the evaluation share it).

>>> engine = default_hybrid(thresholds=(1, 5, 20))
>>> sorted(engine.sources)
['cf', 'cohort', 'content', 'ease', 'mf', 'popularity', 'rating', 'seq', 'session', 'sknn']
>>> engine.policy.names
['cold', 'warm', 'active', 'established']
>>> build_row("cf").policy.names
['all']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.base import Recommender
from models.cf import ItemCooccurrence
from models.content import ContentModel
from models.ease import ItemEASE
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy
from models.mf import ImplicitMF, RatingMF
from models.popularity import CohortPopularity, DecayedPopularity
from models.sequence import NextItemSoftmax
from models.session import SessionKNN, TransitionModel

__all__ = ["ROWS", "SOURCES", "build_row", "default_hybrid", "make_sources"]

#: name -> constructor of every candidate source recstream ships, from
#: ``(half_life, seed, thresholds)``.
SOURCES: dict[str, Callable[[float, int, tuple[int, ...]], Recommender]] = {
    "popularity": lambda half_life, seed, stages: DecayedPopularity(half_life=half_life),
    "cohort": lambda half_life, seed, stages: CohortPopularity(stages=stages),
    "content": lambda half_life, seed, stages: ContentModel(),
    "session": lambda half_life, seed, stages: TransitionModel(),
    "sknn": lambda half_life, seed, stages: SessionKNN(),
    "cf": lambda half_life, seed, stages: ItemCooccurrence(),
    "ease": lambda half_life, seed, stages: ItemEASE(),
    "mf": lambda half_life, seed, stages: ImplicitMF(seed=seed),
    "seq": lambda half_life, seed, stages: NextItemSoftmax(seed=seed),
    "rating": lambda half_life, seed, stages: RatingMF(seed=seed),
}

#: Rows of ``recstream evaluate`` by default: every single source, then the hybrid.
ROWS: tuple[str, ...] = (
    "popularity",
    "cohort",
    "content",
    "session",
    "sknn",
    "cf",
    "ease",
    "mf",
    "seq",
    "hybrid",
)


def make_sources(
    names: Sequence[str],
    *,
    half_life: float = 24 * 3600.0,
    seed: int = 42,
    thresholds: Sequence[int] = (1, 5, 20),
) -> dict[str, Recommender]:
    """The named sources; ``thresholds`` (the switching policy's) group users into cohorts."""
    unknown = set(names) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; known: {sorted(SOURCES)}")
    stages = tuple(thresholds)
    return {name: SOURCES[name](half_life, seed, stages) for name in names}


def default_hybrid(
    *,
    thresholds: Sequence[int] = (1, 5, 20),
    half_life: float = 24 * 3600.0,
    seed: int = 42,
) -> HybridRecommender:
    """Every source recstream ships, behind the switching policy with ``thresholds``."""
    sources = make_sources(list(SOURCES), half_life=half_life, seed=seed, thresholds=thresholds)
    return HybridRecommender(sources, SwitchingPolicy.from_thresholds(thresholds))


def build_row(
    name: str,
    *,
    thresholds: Sequence[int] = (1, 5, 20),
    half_life: float = 24 * 3600.0,
    seed: int = 42,
) -> HybridRecommender:
    """``hybrid`` (the worker's default) or one source alone, as an evaluation row."""
    if name == "hybrid":
        return default_hybrid(thresholds=thresholds, half_life=half_life, seed=seed)
    sources = make_sources([name], half_life=half_life, seed=seed, thresholds=thresholds)
    return HybridRecommender(sources, SwitchingPolicy([Phase("all", 0, {name: 1.0})]))
