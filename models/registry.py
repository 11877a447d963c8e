"""Every candidate source recstream ships, in one place: a source is one class and one entry.

**Adding a source = one class file + one registry entry.** Write the class in its own module
(a :class:`~models.base.Recommender` whose ``name`` is the source's name) and add one
:class:`SourceSpec` to :data:`SPECS`, e.g. for a ``models/trend.py`` holding ``Trend``::

    SourceSpec("trend", Trend, settings={"seed": "seed"}, weights={"warm": 0.2}),

Nothing else changes: the worker's line-up and the evaluation's rows (:mod:`models.factory`),
the switching hybrid's default phases (:data:`models.hybrid.DEFAULT_PHASES`), the scripts'
lists (``scripts/sweep_models.py``, ``tune_hybrid.py``, ``bench_models.py``) and the contract
suite (``tests/models/test_contract.py``) all read the entries.

An entry says how the source is built from the line-up's settings (``half_life``, ``seed`` and
the switching ``thresholds``: ``settings`` maps constructor arguments to them; every other
argument is the class's own default unless ``params`` sets it), the weight each phase of the
hybrid gives it (:data:`PHASES`), whether it is the fallback (``role="fallback"``: it serves a
phase that weighs no source the deployment has, fills lists left short, and answers the item
popularity and trending of the API and dashboard), and whether it is a ranking row of the
evaluation (``ranked``; a source that only predicts ratings is not).

>>> [spec.name for spec in SPECS]
['popularity', 'cohort', 'content', 'session', 'sknn', 'cf', 'ease', 'mf', 'seq', 'rating']
>>> REGISTRY["cohort"].build(thresholds=(2, 6, 30)).stages
(2, 6, 30)
>>> phase_weights("cold"), fallback()
({'cohort': 1.0}, 'popularity')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from models.base import Recommender
from models.cf import ItemCooccurrence
from models.cohort import CohortPopularity
from models.content import ContentModel
from models.ease import ItemEASE
from models.implicit_mf import ImplicitMF
from models.popularity import DecayedPopularity
from models.rating_mf import RatingMF
from models.sequence import NextItemSoftmax
from models.sknn import SessionKNN
from models.transitions import TransitionModel

__all__ = [
    "PHASES",
    "REGISTRY",
    "SPECS",
    "SourceSpec",
    "fallback",
    "line_up",
    "phase_table",
    "phase_weights",
    "ranked",
]

#: The switching hybrid's phases in order, with the interaction count each starts at by
#: default (``recstream``'s thresholds 1, 5, 20 move all but the first).
PHASES: tuple[tuple[str, int], ...] = (("cold", 0), ("warm", 1), ("active", 5), ("established", 20))

#: The line-up's settings a constructor argument can take (see :meth:`SourceSpec.build`).
Setting = Literal["half_life", "seed", "thresholds"]


@dataclass(frozen=True)
class SourceSpec:
    """One source: its name (its class's ``name``), class, how it is built, its phase weights.

    Parameters:
        name: the source's name in the line-up, in a candidate's ``sources`` and on the CLI.
        cls: the model class.
        settings: constructor argument -> the line-up setting it takes.
        params: other constructor arguments that differ from the class's defaults.
        weights: phase name (of :data:`PHASES`) -> the weight the hybrid gives it there.
        role: ``"fallback"`` for the one source behind every phase (see the module docstring).
        ranked: whether it is a ranking row of the evaluation and a source the tuner weighs.
        default: whether it is in the worker's default line-up (:func:`line_up`); one that is
            not is still an evaluation row and a source a deployment can name in
            ``RECSTREAM_SOURCES``, weighted by ``weights`` when it does.
    """

    name: str
    cls: type[Recommender]
    settings: Mapping[str, Setting] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    role: Literal["fallback"] | None = None
    ranked: bool = True
    default: bool = True

    def __post_init__(self) -> None:
        if self.cls.name != self.name:
            raise ValueError(f"{self.cls.__name__}.name is {self.cls.name!r}, not {self.name!r}")
        unknown = set(self.weights) - {phase for phase, _ in PHASES}
        if unknown or not all(w > 0 for w in self.weights.values()):
            raise ValueError(f"{self.name}: weights need known phases and > 0, got {self.weights}")
        for attr in ("settings", "params", "weights"):  # read-only: entries are shared
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))

    def build(
        self,
        *,
        half_life: float = 24 * 3600.0,
        seed: int = 42,
        thresholds: Sequence[int] = (1, 5, 20),
        **params: Any,
    ) -> Recommender:
        """A fresh model from the line-up's settings; ``params`` override constructor arguments.

        >>> REGISTRY["popularity"].build(half_life=60.0).half_life
        60.0
        """
        given: dict[str, Any] = {
            "half_life": half_life,
            "seed": seed,
            "thresholds": tuple(thresholds),
        }
        chosen = {arg: given[setting] for arg, setting in self.settings.items()}
        return self.cls(**{**self.params, **chosen, **params})


#: Every source, in line-up order (the worker's, and the evaluation's rows). The weights were
#: chosen by measurement (scripts/tune_hybrid.py, docs/EVALUATION.md): a user's first event is
#: served what other newcomers picked first (cohort popularity); then the neighbourhood
#: sources lead (item co-occurrence CF and session-kNN, with transitions, the next-item softmax
#: and a little of what users at the same stage pick); from 5 interactions on, CF and the
#: next-item softmax lead with EASE, and for established users CF, EASE and the softmax weigh
#: the same. Content has little weight on ratings data (genres only) but keeps a voice where it
#: helped. Sources a deployment lacks are skipped; the fallback fills any list left short.
SPECS: tuple[SourceSpec, ...] = (
    SourceSpec("popularity", DecayedPopularity, {"half_life": "half_life"}, role="fallback"),
    SourceSpec(
        "cohort", CohortPopularity, {"stages": "thresholds"}, weights={"cold": 1.0, "warm": 0.1}
    ),
    SourceSpec("content", ContentModel, weights={"active": 0.1, "established": 0.05}),
    SourceSpec(
        "session", TransitionModel, weights={"warm": 1.0, "active": 0.5, "established": 0.1}
    ),
    SourceSpec("sknn", SessionKNN, weights={"warm": 1.0, "active": 0.5, "established": 0.1}),
    SourceSpec("cf", ItemCooccurrence, weights={"warm": 1.0, "active": 1.0, "established": 1.0}),
    SourceSpec("ease", ItemEASE, weights={"warm": 0.2, "active": 0.5, "established": 1.0}),
    SourceSpec(
        "mf",
        ImplicitMF,
        {"seed": "seed"},
        weights={"warm": 0.1, "active": 0.1, "established": 0.1},
        # not run by default: in the hybrid it moved no measured list (MovieLens-100K HR@10
        # per event the same without it) and cost a tenth of the worker's CPU per event
        # (docs/PERFORMANCE.md); alone it is far behind the neighbourhood sources
        default=False,
    ),
    SourceSpec(
        "seq",
        NextItemSoftmax,
        {"seed": "seed"},
        weights={"warm": 0.5, "active": 1.0, "established": 1.0},
    ),
    SourceSpec("rating", RatingMF, {"seed": "seed"}, ranked=False),
)

#: name -> entry, in line-up order.
REGISTRY: Mapping[str, SourceSpec] = MappingProxyType({spec.name: spec for spec in SPECS})


def phase_weights(phase: str) -> dict[str, float]:
    """Source -> weight in ``phase``, heaviest first (ties in line-up order): the order the
    hybrid blends them in, so a candidate's ``sources`` name its strongest source first."""
    weighted = [(spec.name, spec.weights[phase]) for spec in SPECS if phase in spec.weights]
    return dict(sorted(weighted, key=lambda nw: -nw[1]))  # a stable sort


def phase_table() -> list[tuple[str, int, dict[str, float]]]:
    """``(phase, default start, weights)`` of every phase, in order (what ``DEFAULT_PHASES`` is)."""
    return [(phase, start, phase_weights(phase)) for phase, start in PHASES]


def fallback() -> str | None:
    """The name of the fallback source (``role="fallback"``), if there is one.

    There is at most one:

    >>> sum(spec.role == "fallback" for spec in SPECS) <= 1
    True
    """
    return next((spec.name for spec in SPECS if spec.role == "fallback"), None)


def ranked() -> tuple[str, ...]:
    """The sources that are ranking rows of the evaluation, in line-up order."""
    return tuple(spec.name for spec in SPECS if spec.ranked)


def line_up() -> tuple[str, ...]:
    """The sources the worker runs by default (``default``), in line-up order: what
    ``RECSTREAM_SOURCES`` is unless set.

    >>> "mf" in line_up(), set(line_up()) < set(REGISTRY)
    (False, True)
    """
    return tuple(spec.name for spec in SPECS if spec.default)
