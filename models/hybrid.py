"""The switching hybrid: pick a phase by the user's interaction count, blend its sources.

A :class:`SwitchingPolicy` maps a user's interaction count to a :class:`Phase` (thresholds
on the count). Each phase weights the candidate sources. :class:`HybridRecommender` is the
cascade: every weighted source proposes candidates, scores are normalised per source to
[0, 1] and blended by the phase's weights, the blend is re-ranked and cut to ``k``. Every
item keeps the sources that put it there and the user's items that led to it.

>>> from models.popularity import DecayedPopularity
>>> hybrid = HybridRecommender({"popularity": DecayedPopularity()}, fallback="popularity")
>>> u = UserState("u1")
>>> for user_id, item in [("a", "x"), ("b", "x"), ("c", "y")]:
...     hybrid.learn_one(UserState(user_id), item, ts=0.0)
>>> recs = hybrid.recommend(u, k=2)
>>> [(c.item_id, c.sources) for c in recs], hybrid.policy.phase_for(u.interactions).name
([('x', ['popularity']), ('y', ['popularity'])], 'cold')
>>> hybrid.popularity("x"), hybrid.trending(1), hybrid.predict_rating("u1", "x")
(2.0, [('x', 2.0)], None)
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models import registry
from models.base import (
    Candidate,
    ItemScorer,
    RatingPredictor,
    Recommender,
    TrendingSource,
    UserState,
    can,
)
from models.ranking import Proposals, RankBatch, Source, Vocab, blend, weights_table

if TYPE_CHECKING:
    from models.events import Event

__all__ = ["DEFAULT_PHASES", "HybridRecommender", "Phase", "SwitchingPolicy"]


@dataclass(frozen=True)
class Phase:
    """A strategy for users with at least ``min_interactions`` interactions."""

    name: str
    min_interactions: int
    weights: Mapping[str, float] = field(default_factory=dict)


#: The default phases, from the source registry (:mod:`models.registry`, where the weights are
#: explained): cold, warm, active, established, from 0, 1, 5 and 20 interactions.
DEFAULT_PHASES: tuple[Phase, ...] = tuple(
    Phase(name, start, weights) for name, start, weights in registry.phase_table()
)


class SwitchingPolicy:
    """Thresholds on the interaction count -> phase.

    >>> policy = SwitchingPolicy.from_thresholds([1, 5, 20])
    >>> [policy.phase_for(n).name for n in (0, 1, 4, 5, 19, 20, 1000)]
    ['cold', 'warm', 'warm', 'active', 'active', 'established', 'established']
    """

    def __init__(self, phases: Sequence[Phase] = DEFAULT_PHASES) -> None:
        if not phases:
            raise ValueError("a policy needs at least one phase")
        ordered = sorted(phases, key=lambda p: p.min_interactions)
        if ordered[0].min_interactions != 0:
            raise ValueError("the first phase must start at 0 interactions")
        if len({p.min_interactions for p in ordered}) != len(ordered):
            raise ValueError("phase thresholds must be distinct")
        self.phases = tuple(ordered)

    @classmethod
    def from_thresholds(
        cls, thresholds: Sequence[int], phases: Sequence[Phase] = DEFAULT_PHASES
    ) -> SwitchingPolicy:
        """The default phases with their thresholds (after the first) replaced."""
        if len(thresholds) != len(phases) - 1 or list(thresholds) != sorted(set(thresholds)):
            raise ValueError(
                f"need {len(phases) - 1} increasing thresholds for phases "
                f"{[p.name for p in phases]}, got {list(thresholds)}"
            )
        if thresholds and thresholds[0] < 1:
            raise ValueError("thresholds must be >= 1")
        starts = [0, *thresholds]
        return cls([Phase(p.name, s, p.weights) for p, s in zip(phases, starts, strict=True)])

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.phases]

    def phase_for(self, interactions: int) -> Phase:
        chosen = self.phases[0]
        for phase in self.phases:
            if interactions >= phase.min_interactions:
                chosen = phase
        return chosen


class HybridRecommender(Recommender):
    """Cascade of sources, blended by the user's phase; every source learns every event.

    Parameters:
        sources: name -> model.
        policy: the switching policy (default thresholds 1, 5, 20).
        candidates_per_source: how many candidates each source proposes before re-ranking.
        fallback: the source (among ``sources``) that serves a phase weighing none of them,
            fills a list left short, and answers :meth:`popularity` and :meth:`trending`;
            by default the registry's (``role="fallback"``), ``None`` for none.
    """

    name = "hybrid"
    #: What a hybrid pickled before the fallback was configurable used (its checkpoint lacks
    #: the attribute): the registry's fallback, as the constructor's default.
    fallback: str | None = registry.fallback()

    def __init__(
        self,
        sources: Mapping[str, Recommender],
        policy: SwitchingPolicy | None = None,
        candidates_per_source: int = 50,
        fallback: str | None = registry.fallback(),
    ) -> None:
        self.sources = dict(sources)
        self.policy = policy or SwitchingPolicy()
        self.candidates_per_source = candidates_per_source
        self.fallback = fallback
        self.deleted: set[str] = set()

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        for model in self.sources.values():
            model.learn_one(user, item_id, ts=ts, weight=weight, value=value)

    def learn_many(
        self, users: Sequence[UserState], events: Sequence[Event]
    ) -> dict[int, Exception]:
        """Every source learns the batch (each in its own way: one event at a time, or in
        array operations); an event fails if any source failed to learn it."""
        failed: dict[int, Exception] = {}
        clock, spent = time.thread_time, self._cpu()
        for name, model in self.sources.items():
            t = clock()
            for i, exc in model.learn_many(users, events).items():
                failed.setdefault(i, exc)
            key = (name, "learn")
            spent[key] = spent.get(key, 0.0) + clock() - t
        return failed

    def take_cpu_seconds(self) -> dict[tuple[str, str], float]:
        """CPU seconds the calling thread spent in each ``(source, stage)`` since the last call
        (stage ``"learn"``: :meth:`learn_many`; ``"rank"``: proposing in
        :meth:`recommend_batch`, and ``("blend", "rank")`` the blend), then starts again: what
        each source costs the worker's event loop (work a source hands to a thread of its
        own, EASE's solve, is not in it).

        >>> from models.popularity import DecayedPopularity
        >>> hybrid = HybridRecommender({"popularity": DecayedPopularity()})
        >>> hybrid.learn_many([], [])
        {}
        >>> lists = hybrid.recommend_batch([UserState("u")])
        >>> sorted(hybrid.take_cpu_seconds()), hybrid.take_cpu_seconds()
        ([('blend', 'rank'), ('popularity', 'learn'), ('popularity', 'rank')], {})
        """
        return self.__dict__.pop("_cpu_seconds", None) or {}

    def _cpu(self) -> dict[tuple[str, str], float]:
        return self.__dict__.setdefault("_cpu_seconds", {})

    def forget_item(self, item_id: str) -> None:
        self.deleted.add(item_id)
        for model in self.sources.values():
            model.forget_item(item_id)

    def upsert_item(
        self,
        item_id: str,
        *,
        title: str = "",
        text: str = "",
        tags: Collection[str] = (),
    ) -> None:
        self.deleted.discard(item_id)
        for model in self.sources.values():
            model.upsert_item(item_id, title=title, text=text, tags=tags)

    def reconfigured(self, current: HybridRecommender) -> HybridRecommender:
        """This engine's learned sources under ``current``'s configuration, for a checkpoint
        restored by newer code or other settings: ``current``'s policy (thresholds and
        weights are configuration, not learned state) and its line-up of sources (one the
        checkpoint lacks starts as ``current``'s fresh model; one no longer used is dropped).

        >>> from models.popularity import DecayedPopularity
        >>> from models.transitions import TransitionModel
        >>> old = HybridRecommender({"popularity": DecayedPopularity()})
        >>> new = HybridRecommender({"popularity": DecayedPopularity(), "new": TransitionModel()})
        >>> engine = old.reconfigured(new)
        >>> engine.sources["popularity"] is old.sources["popularity"], sorted(engine.sources)
        (True, ['new', 'popularity'])
        """
        self.sources = {n: self.sources.get(n, fresh) for n, fresh in current.sources.items()}
        self.policy = current.policy
        self.candidates_per_source = current.candidates_per_source
        self.fallback = current.fallback
        return self

    def phase(self, user: UserState) -> Phase:
        return self.policy.phase_for(user.interactions)

    def _fallback(self) -> Recommender | None:
        return self.sources.get(self.fallback) if self.fallback is not None else None

    def popularity(self, item_id: str) -> float | None:
        """The fallback source's score of ``item_id`` (None if it has none that scores items)."""
        source = self._fallback()
        return source.score(item_id) if can(source, ItemScorer) else None

    def trending(self, n: int = 10) -> list[tuple[str, float]]:
        """The fallback source's ``n`` trending items with their scores ([] if it lists none)."""
        source = self._fallback()
        return source.trending(n) if can(source, TrendingSource) else []

    def predict_rating(self, user_id: str, item_id: str) -> float | None:
        """The rating of the first source that predicts ratings (None if none does)."""
        for source in self.sources.values():
            if can(source, RatingPredictor):
                predicted = source.predict_rating(user_id, item_id)
                if predicted is not None:
                    return predicted
        return None

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        return self.recommend_batch([user], k, [exclude])[0]

    def recommend_batch(
        self,
        users: Sequence[UserState],
        k: int = 10,
        excludes: Sequence[Collection[str]] | None = None,
    ) -> list[list[Candidate]]:
        """Each user's list, as :meth:`recommend` gives it, for many users at once.

        Every source weighted in some user's phase proposes its ``candidates_per_source``
        best items for all of its users in one call (:meth:`Recommender.propose`); the blend
        (:func:`models.ranking.blend`) divides each source's scores by the user's best from
        it, weighs them by the user's phase and keeps the ``k`` best (ties by item id); a list
        left short is filled from the fallback source. Seen items (``excludes[i]`` for
        ``users[i]``) and deleted ones are never listed.
        """
        if excludes is None:
            excludes = [()] * len(users)
        if len(excludes) != len(users):
            raise ValueError("one exclude collection per user")
        fallback = self.fallback if self.fallback in self.sources else None
        by_phase: dict[str, dict[str, float]] = {}  # the weights in use, once per phase
        for phase in self.policy.phases:
            weights = {n: w for n, w in phase.weights.items() if w > 0 and n in self.sources}
            by_phase[phase.name] = weights or ({fallback: 1.0} if fallback is not None else {})
        chosen = [by_phase[self.phase(user).name] for user in users]
        if self.deleted:
            excludes = [set(e) | self.deleted for e in excludes]
        batch = RankBatch(users, excludes, self._vocab())
        names = [name for name in self.sources if any(name in w for w in chosen)]
        weight, rank = weights_table(chosen, names)
        n = max(k, self.candidates_per_source)
        blocks = []
        # sources that score their catalogue in bulk go last: they also score the pool of what
        # the others proposed, each user only what was proposed to that user (the two-stage
        # cut of a large catalogue, models.ranking.OwnPool)
        order = sorted(
            range(len(names)), key=lambda s: getattr(self.sources[names[s]], "bulk", False)
        )
        proposed: list[Proposals] = []
        clock, spent = time.thread_time, self._cpu()
        for s in order:
            name = names[s]
            t = clock()
            owners = np.flatnonzero(weight[s] > 0)
            source = self.sources[name]
            if getattr(source, "bulk", False) and batch.pool is None:
                pooled = proposed or [Proposals.empty()]
                batch.set_pool(
                    np.concatenate([p.owner for p in pooled]),
                    np.concatenate([p.items for p in pooled]),
                )
            props = source.propose(batch.subset(owners.tolist()), n)
            props.owner = owners[props.owner]
            proposed.append(props)
            blocks.append(Source(name, props, weight[s], rank[s], source.explains))
            spent[name, "rank"] = spent.get((name, "rank"), 0.0) + clock() - t
        t = clock()
        lists = blend(batch, blocks, k)
        spent["blend", "rank"] = spent.get(("blend", "rank"), 0.0) + clock() - t
        for b, ranked in enumerate(lists):
            if len(ranked) < k and fallback is not None and fallback not in chosen[b]:
                t = clock()
                have = set(excludes[b]) | {c.item_id for c in ranked}
                source = self.sources[fallback]
                for cand in source.recommend(users[b], k=k - len(ranked), exclude=have):
                    ranked.append(Candidate(cand.item_id, 0.0, [fallback]))
                spent[fallback, "rank"] = spent.get((fallback, "rank"), 0.0) + clock() - t
        return lists

    def _vocab(self) -> Vocab:
        vocab = self.__dict__.get("_ranking_vocab")
        if vocab is None:
            vocab = self.__dict__["_ranking_vocab"] = Vocab()
        return vocab

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_ranking_vocab", None)  # a cache of item ids, rebuilt on first use
        state.pop("_cpu_seconds", None)  # what this process spent, not the models' state
        return state
