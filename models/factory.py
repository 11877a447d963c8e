"""The worker's model line-up and the evaluation's rows, built from :mod:`models.registry`.

>>> engine = default_hybrid(thresholds=(1, 5, 20))
>>> sorted(engine.sources)
['cf', 'cohort', 'content', 'ease', 'popularity', 'rating', 'seq', 'session', 'sknn']
>>> list(default_hybrid(sources=["mf", "cf"]).sources)
['cf', 'mf']
>>> engine.policy.names, engine.fallback
(['cold', 'warm', 'active', 'established'], 'popularity')
>>> build_row("cf").policy.names
['all']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from models import registry
from models.base import Recommender
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy

__all__ = ["ROWS", "SOURCES", "build_row", "default_hybrid", "make_sources"]


def _constructor(spec: registry.SourceSpec) -> Callable[[float, int, tuple[int, ...]], Recommender]:
    return lambda half_life, seed, stages: spec.build(
        half_life=half_life, seed=seed, thresholds=stages
    )


#: name -> constructor of every candidate source recstream ships, from
#: ``(half_life, seed, thresholds)`` (the registry's entries, in line-up order).
SOURCES: dict[str, Callable[[float, int, tuple[int, ...]], Recommender]] = {
    spec.name: _constructor(spec) for spec in registry.SPECS
}

#: Rows of ``recstream evaluate`` by default: every ranking source, then the hybrid.
ROWS: tuple[str, ...] = (*registry.ranked(), "hybrid")


def make_sources(
    names: Sequence[str],
    *,
    half_life: float = 24 * 3600.0,
    seed: int = 42,
    thresholds: Sequence[int] = (1, 5, 20),
) -> dict[str, Recommender]:
    """The named sources; ``thresholds`` (the switching policy's) group users into cohorts."""
    unknown = set(names) - set(registry.REGISTRY)
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; known: {sorted(registry.REGISTRY)}")
    return {
        name: registry.REGISTRY[name].build(half_life=half_life, seed=seed, thresholds=thresholds)
        for name in names
    }


def _hybrid(sources: Mapping[str, Recommender], policy: SwitchingPolicy) -> HybridRecommender:
    fallback = registry.fallback()
    return HybridRecommender(sources, policy, fallback=fallback if fallback in sources else None)


def default_hybrid(
    *,
    thresholds: Sequence[int] = (1, 5, 20),
    half_life: float = 24 * 3600.0,
    seed: int = 42,
    sources: Sequence[str] | None = None,
) -> HybridRecommender:
    """The worker's hybrid: ``sources`` (by default the registry's line-up,
    :func:`models.registry.line_up`), in line-up order, behind the switching policy with
    ``thresholds``."""
    names = registry.line_up() if sources is None else sources
    built = make_sources(names, half_life=half_life, seed=seed, thresholds=thresholds)
    in_order = {name: built[name] for name in registry.REGISTRY if name in built}
    return _hybrid(in_order, SwitchingPolicy.from_thresholds(thresholds))


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
    return _hybrid(sources, SwitchingPolicy([Phase("all", 0, {name: 1.0})]))
