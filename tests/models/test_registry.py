"""The source registry: one entry per source, and everything that reads it agrees with it."""

from __future__ import annotations

import pytest

from models import registry
from models.base import Recommender
from models.factory import ROWS, SOURCES, build_row, default_hybrid, make_sources
from models.hybrid import DEFAULT_PHASES, SwitchingPolicy
from models.registry import PHASES, REGISTRY, SPECS, SourceSpec

#: DEFAULT_PHASES as models/hybrid.py spelled them out before they came from the registry.
BEFORE = {
    "cold": (0, {"cohort": 1.0}),
    "warm": (
        1,
        {"sknn": 1.0, "cf": 1.0, "session": 1.0, "seq": 0.5, "ease": 0.2, "mf": 0.1, "cohort": 0.1},
    ),
    "active": (
        5,
        {
            "cf": 1.0,
            "seq": 1.0,
            "ease": 0.5,
            "sknn": 0.5,
            "session": 0.5,
            "mf": 0.1,
            "content": 0.1,
        },
    ),
    "established": (
        20,
        {
            "cf": 1.0,
            "ease": 1.0,
            "seq": 1.0,
            "sknn": 0.1,
            "session": 0.1,
            "mf": 0.1,
            "content": 0.05,
        },
    ),
}


def test_the_default_phases_are_the_ones_written_out_before() -> None:
    assert [p.name for p in DEFAULT_PHASES] == list(BEFORE) == [name for name, _ in PHASES]
    for phase in DEFAULT_PHASES:
        start, weights = BEFORE[phase.name]
        assert phase.min_interactions == start and dict(phase.weights) == weights
        assert list(phase.weights.values()) == sorted(phase.weights.values(), reverse=True)
    assert SwitchingPolicy().names == list(BEFORE)


def test_the_line_up_and_rows_are_the_ones_before() -> None:
    names = ["popularity", "cohort", "content", "session", "sknn", "cf", "ease", "mf", "seq"]
    assert list(SOURCES) == list(REGISTRY) == [*names, "rating"]
    assert tuple(names) == registry.ranked() == ROWS[:-1] and ROWS[-1] == "hybrid"
    assert list(default_hybrid().sources) == list(registry.line_up())
    assert [n for n in REGISTRY if n not in registry.line_up()] == ["mf"]
    assert list(default_hybrid(sources=list(REGISTRY)).sources) == list(REGISTRY)
    assert registry.fallback() == "popularity"


def test_every_entry_is_named_after_its_class_and_built_from_the_settings() -> None:
    assert len({spec.name for spec in SPECS}) == len(SPECS)
    for spec in SPECS:
        assert spec.cls.name == spec.name and issubclass(spec.cls, Recommender)
        model = SOURCES[spec.name](60.0, 5, (2, 4, 8))
        assert type(model) is spec.cls
        given = {"half_life": 60.0, "seed": 5, "thresholds": (2, 4, 8)}
        assert all(getattr(model, arg) == given[s] for arg, s in spec.settings.items())
    sources = make_sources(["popularity", "cohort", "mf"], half_life=60.0, seed=5)
    assert sources["popularity"].half_life == 60.0 and sources["cohort"].stages == (1, 5, 20)
    assert sources["mf"].seed == 5


def test_a_line_up_naming_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="nope"):
        default_hybrid(sources=["cf", "nope"])


def test_a_row_is_one_source_alone_and_the_fallback_only_where_it_is() -> None:
    assert build_row("cf").fallback is None
    assert build_row("popularity").fallback == "popularity"
    assert build_row("hybrid").fallback == "popularity"
    with pytest.raises(ValueError, match="unknown model"):
        make_sources(["nope"])


def test_entries_are_checked_and_read_only() -> None:
    from models.popularity import DecayedPopularity

    with pytest.raises(ValueError, match="name"):
        SourceSpec("pop", DecayedPopularity)
    with pytest.raises(ValueError, match="phases"):
        SourceSpec("popularity", DecayedPopularity, weights={"lukewarm": 1.0})
    with pytest.raises(ValueError, match="> 0"):
        SourceSpec("popularity", DecayedPopularity, weights={"warm": 0.0})
    with pytest.raises(TypeError):
        REGISTRY["cf"].weights["warm"] = 2.0  # type: ignore[index]
    assert REGISTRY["popularity"].build(capacity=10).capacity == 10  # params override
