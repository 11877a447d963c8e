"""The contract every source keeps, checked on every registry entry and on the default hybrid.

In the spirit of river's ``check_estimator`` (and implicit's shared test mixin): one suite,
parametrized over :data:`models.registry.SPECS`, so a new source is covered by its registry
entry alone. Each model learns the same seeded synthetic stream (two groups of users with
different tastes, in sessions, clicks, purchases, ratings and the odd dislike) through the one
event path, :func:`models.events.apply_event`, then must:

* recommend finite scores, best first, at most ``k``, no item twice, each naming its source;
* honour ``exclude``, and ``forget_item`` (a forgotten item never comes back, even as the
  stream goes on without it);
* survive a pickle round-trip (same lists, and the same lists after learning more);
* be deterministic under its seed (two fresh instances, one stream, the same lists);
* take garbage events (NaN, infinite weights or times) without failing or scoring NaN;
* store its hyperparameters as given, with immutable defaults only;
* document itself with an example that runs (the doctests of ``models/``).
"""

from __future__ import annotations

import doctest
import inspect
import itertools
import math
import pickle
import random
import sys
from collections.abc import Collection, Iterable

import numpy as np
import pytest

from models import registry
from models.base import Candidate, Recommender, UserState
from models.events import Event, apply_event, apply_events
from models.factory import build_row, default_hybrid
from models.hybrid import HybridRecommender, SwitchingPolicy
from models.ranking import RankBatch, Vocab

CASES = [*registry.REGISTRY, "hybrid"]
K = 10
GROUPS = {"a": ("space", "sci-fi"), "b": ("romance", "comedy")}


def build(name: str, seed: int = 42) -> Recommender:
    """A fresh model as the worker builds it (the registry's settings)."""
    return (
        default_hybrid(seed=seed) if name == "hybrid" else registry.REGISTRY[name].build(seed=seed)
    )


def catalogue() -> list[tuple[str, str, list[str]]]:
    """``(item_id, title, tags)``: 20 items per taste group, each with a group tag."""
    return [
        (f"{g}{n}", f"{words[0]} story {n}", [words[n % 2], f"era{n % 4}"])
        for g, words in GROUPS.items()
        for n in range(20)
    ]


def stream(seed: int = 7, n_users: int = 24, n_events: int = 420) -> list[Event]:
    """Even users like group ``a``, odd users group ``b`` (9 picks in 10 from their group);
    sessions of 3-8 events; a few purchases, ratings (high in group, low out) and dislikes.
    Group items are drawn with a skew, so some are clearly more popular than others."""
    rng = random.Random(seed)
    events: list[Event] = []
    session: dict[str, tuple[str, int]] = {}
    for n in range(n_events):
        u = rng.randrange(n_users)
        uid = f"u{u}"
        sid, left = session.get(uid, (f"{uid}-s{n}", rng.randint(3, 8)))
        session[uid] = (sid, left - 1) if left > 1 else (f"{uid}-s{n + 1}", rng.randint(3, 8))
        liked = "a" if u % 2 == 0 else "b"
        group = liked if rng.random() < 0.9 else ("b" if liked == "a" else "a")
        item = f"{group}{min(int(rng.expovariate(0.25)), 19)}"
        kind, value = rng.choice([("click", None)] * 6 + [("purchase", None), ("dislike", None)])
        if rng.random() < 0.3:
            kind, value = (
                "rating",
                float(rng.choice([4, 5]) if group == liked else rng.choice([1, 2])),
            )
        events.append(Event(uid, item, ts=1e9 + 60.0 * n, kind=kind, value=value, session_id=sid))
    return events


def learn(model: Recommender, events: Iterable[Event], users: dict[str, UserState]) -> None:
    for event in events:
        user = users.get(event.user_id) or users.setdefault(event.user_id, UserState(event.user_id))
        apply_event(model, user, event)


def learned(name: str, n_events: int = 420, seed: int = 42) -> tuple[Recommender, dict]:
    model = build(name, seed)
    for item_id, title, tags in catalogue():
        model.upsert_item(item_id, title=title, tags=tags)
    users: dict[str, UserState] = {}
    learn(model, stream()[:n_events], users)
    return model, users


def lists(model: Recommender, users: dict[str, UserState], k: int = K) -> dict[str, list]:
    """Every user's list (seen items excluded, as served), and a stranger's."""
    everyone = {**users, "stranger": UserState("stranger")}
    return {uid: model.recommend(user, k=k, exclude=user.seen) for uid, user in everyone.items()}


def names(candidates: list[Candidate]) -> list[str]:
    return [c.item_id for c in candidates]


@pytest.fixture(params=CASES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_recommendations_are_finite_best_first_unique_and_at_most_k(name: str) -> None:
    model, users = learned(name)
    line_up = set(model.sources) if isinstance(model, HybridRecommender) else {name}
    served = 0
    for k in (0, 1, 3, K):
        for uid, recs in lists(model, users, k).items():
            assert len(recs) <= k, (uid, k)
            assert len(set(names(recs))) == len(recs), (uid, names(recs))
            scores = [c.score for c in recs]
            assert all(isinstance(s, float) and math.isfinite(s) for s in scores), scores
            assert scores == sorted(scores, reverse=True), (uid, scores)
            assert all(c.sources and set(c.sources) <= line_up for c in recs), recs[:2]
            served += bool(recs)
    assert served > len(users), "the model learned the stream but recommends (almost) nothing"


def test_exclude_is_honoured(name: str) -> None:
    model, users = learned(name)
    checked = 0
    for user in users.values():
        full = names(model.recommend(user, k=K))
        banned = set(full[: len(full) // 2 + 1]) | user.seen
        assert not banned & set(names(model.recommend(user, k=K, exclude=banned)))
        checked += bool(full)
    assert checked, "nothing was recommended, so nothing was checked"


def test_a_forgotten_item_is_never_recommended_afterwards(name: str) -> None:
    model, users = learned(name, n_events=300)
    counts: dict[str, int] = {}
    for recs in lists(model, users, k=3).values():
        for item in names(recs):
            counts[item] = counts.get(item, 0) + 1
    assert counts, "nothing was recommended, so nothing can be forgotten"
    gone = max(sorted(counts), key=counts.__getitem__)  # the most recommended item
    model.forget_item(gone)
    for recs in lists(model, users, k=40).values():
        assert gone not in names(recs)
    rest = [e for e in stream()[300:] if e.item_id != gone]  # the stream goes on without it
    for event in rest:
        learn(model, [event], users)
        if event.user_id == "u0":
            assert gone not in names(model.recommend(users["u0"], k=40))
    for recs in lists(model, users, k=40).values():
        assert gone not in names(recs)


def test_a_pickle_round_trip_keeps_the_lists_and_the_learning(name: str) -> None:
    # ItemEASE stores its counts, not its solve (re-solved on first use): this stream is shorter
    # than its refit_every, so the original's weights come from the counts the clone re-solves
    model, users = learned(name, n_events=300)
    before = lists(model, users)
    clone = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    assert lists(clone, users) == before
    clone_users = pickle.loads(pickle.dumps(users))
    learn(model, stream()[300:], users)
    learn(clone, stream()[300:], clone_users)
    assert lists(clone, clone_users) == lists(model, users)


def test_two_instances_with_one_seed_learn_the_same(name: str) -> None:
    first, first_users = learned(name, seed=3)
    second, second_users = learned(name, seed=3)
    assert lists(first, first_users) == lists(second, second_users)


@pytest.mark.parametrize(
    ("weight", "ts", "value"),
    [
        (math.nan, 1e9, None),
        (math.inf, 1e9, None),
        (-math.inf, 1e9, None),
        (1.0, math.nan, None),
        (1.0, math.inf, None),
        (1.0, 1e9, math.nan),
        (1e308, 1e9, 1e308),
    ],
    ids=["nan-weight", "inf-weight", "-inf-weight", "nan-ts", "inf-ts", "nan-value", "huge"],
)
def test_garbage_events_neither_fail_nor_poison_the_scores(
    name: str, weight: float, ts: float, value: float | None
) -> None:
    model, users = learned(name, n_events=200)
    for user in list(users.values())[:3]:
        model.learn_one(user, "a1", ts=ts, weight=weight, value=value)
        model.learn_one(user, "never-seen", ts=ts, weight=weight, value=value)
    for recs in lists(model, users).values():
        assert all(math.isfinite(c.score) for c in recs)


def _immutable(value: object) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def test_the_constructor_stores_its_hyperparameters_as_given(name: str) -> None:
    if name == "hybrid":
        sources = {"popularity": build("popularity"), "cf": build("cf")}
        given = {"sources": sources, "policy": SwitchingPolicy(), "candidates_per_source": 7}
        model = HybridRecommender(**given, fallback="popularity")
        assert all(getattr(model, key) == value for key, value in given.items())
        assert model.fallback == "popularity"
        return
    spec = registry.REGISTRY[name]
    params = inspect.signature(spec.cls.__init__).parameters
    defaults = {p: params[p].default for p in list(params)[1:]}
    assert inspect.Parameter.empty not in defaults.values(), "every hyperparameter has a default"
    mutable = [p for p, default in defaults.items() if not _immutable(default)]
    assert not mutable, f"mutable defaults: {mutable}"
    model = spec.cls(**defaults)
    unstored = [p for p, value in defaults.items() if getattr(model, p, object()) != value]
    assert not unstored, f"not stored as given: {unstored}"
    built = spec.build(half_life=123.0, seed=9, thresholds=(2, 3, 4))
    given = {"half_life": 123.0, "seed": 9, "thresholds": (2, 3, 4)}
    for arg, setting in spec.settings.items():
        assert getattr(built, arg) == given[setting], arg


def test_the_docstring_has_an_example_that_uses_the_class(name: str) -> None:
    cls = HybridRecommender if name == "hybrid" else registry.REGISTRY[name].cls
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} has no docstring"
    module = sys.modules[cls.__module__]
    examples = [
        example.source for test in doctest.DocTestFinder().find(module) for example in test.examples
    ]
    assert any(f"{cls.__name__}(" in source for source in examples), (
        f"no example in {module.__name__} builds a {cls.__name__}"
    )


def same_lists(got: list[Candidate], want: list[Candidate], rel: float = 1e-5) -> None:
    """The same items in the same order with the same sources and reasons, scores equal up to
    float rounding; items whose scores tie may come in either order (and a tie at the end of
    the list may be cut either way)."""
    assert len(got) == len(want), (names(got), names(want))
    for g, w in zip(got, want, strict=True):
        assert g.score == pytest.approx(w.score, rel=rel, abs=1e-12), (g, w)
    tied = [
        abs(a.score - b.score) <= rel * max(abs(a.score), 1e-12)
        for a, b in itertools.pairwise(want)
    ]
    groups: list[list[int]] = [[0]] if want else []
    for i, tie in enumerate(tied, start=1):
        (groups[-1].append(i) if tie else groups.append([i]))
    last = len(want) - 1
    for group in groups:
        got_g = {got[i].item_id: got[i] for i in group}
        want_g = {want[i].item_id: want[i] for i in group}
        if last in group:  # a tie cut by the list's end: either member may be listed
            continue
        assert got_g.keys() == want_g.keys(), (names(got), names(want))
        for item, w in want_g.items():
            assert (got_g[item].sources, got_g[item].because) == (w.sources, w.because), item


def test_proposals_for_a_batch_are_each_users_recommendations(name: str) -> None:
    """``propose`` (what the batched ranking asks every source) lists for each user of a batch
    what ``recommend`` lists for that user alone."""
    if name == "hybrid":
        return  # the hybrid's batched ranking: the next test
    model, users = learned(name)
    everyone = [*users.values(), UserState("stranger")]
    for n in (1, K, 50):
        batch = RankBatch(everyone, [u.seen for u in everyone], Vocab())
        props = model.propose(batch, n)
        why = props.explain(np.arange(len(props)))
        for b, user in enumerate(everyone):
            mine = np.flatnonzero(props.owner == b)
            got = [
                Candidate(batch.vocab.names[props.items[e]], float(props.scores[e]), [name], why[e])
                for e in mine.tolist()
            ]
            got.sort(key=lambda c: -c.score)
            same_lists(got, model.recommend(user, k=n, exclude=user.seen))


def reference(
    hybrid: HybridRecommender, user: UserState, k: int, exclude: Collection[str] = ()
) -> list[Candidate]:
    """The hybrid's ranking as it was before it was batched: each weighted source's candidates
    for this user alone, normalised, weighed, summed, sorted, filled from the fallback."""
    weights = {n: w for n, w in hybrid.phase(user).weights.items() if w > 0 and n in hybrid.sources}
    fallback = hybrid.fallback if hybrid.fallback in hybrid.sources else None
    if not weights and fallback is not None:
        weights = {fallback: 1.0}
    n = max(k, hybrid.candidates_per_source)
    if hybrid.deleted:
        exclude = set(exclude) | hybrid.deleted
    blended: dict[str, Candidate] = {}
    explained: dict[str, bool] = {}
    for source, w in weights.items():
        cands = hybrid.sources[source].recommend(user, k=n, exclude=exclude)
        top = max((c.score for c in cands if math.isfinite(c.score)), default=0.0)
        for cand in cands:
            if not math.isfinite(cand.score) or cand.score <= 0 or top <= 0:
                continue
            part = w * cand.score / top
            got = blended.get(cand.item_id)
            if got is None:
                got = blended[cand.item_id] = Candidate(cand.item_id, 0.0, [])
            got.score += part
            got.sources.append(source)
            if hybrid.sources[source].explains and not explained.get(cand.item_id):
                got.because = list(cand.because)  # the first source that gives reasons
                explained[cand.item_id] = True
    ranked = sorted(blended.values(), key=lambda c: (-c.score, c.item_id))[:k]
    if len(ranked) < k and fallback is not None and fallback not in weights:
        have = set(exclude) | {c.item_id for c in ranked}
        for cand in hybrid.sources[fallback].recommend(user, k=k - len(ranked), exclude=have):
            ranked.append(Candidate(cand.item_id, 0.0, [fallback]))
    return ranked


@pytest.mark.parametrize("n_events", [40, 150, 420])
def test_the_batched_ranking_gives_each_user_the_per_user_list(name: str, n_events: int) -> None:
    """Every model as an evaluation row (the hybrid, or one source behind it), part-way through
    the stream (users in every phase): ranking all users at once lists what the per-user
    reference lists, with the same sources and reasons; and again after a deletion."""
    model = build(name) if name == "hybrid" else build_row(name, seed=42)
    for item_id, title, tags in catalogue():
        model.upsert_item(item_id, title=title, tags=tags)
    users: dict[str, UserState] = {}
    learn(model, stream()[:n_events], users)
    assert isinstance(model, HybridRecommender)
    everyone = [*users.values(), UserState("stranger")]
    for k in (1, K):
        batched = model.recommend_batch(everyone, k, [u.seen for u in everyone])
        for user, got in zip(everyone, batched, strict=True):
            same_lists(got, reference(model, user, k, user.seen))
    model.forget_item("a1")
    batched = model.recommend_batch(everyone, K, [u.seen for u in everyone])
    for user, got in zip(everyone, batched, strict=True):
        assert "a1" not in names(got)
        same_lists(got, reference(model, user, K, user.seen))


@pytest.mark.parametrize("n_events", [150, 420])
def test_a_users_list_over_a_large_catalogue_is_the_same_whoever_shares_the_batch(
    n_events: int,
) -> None:
    """Over a catalogue larger than the sources that score in bulk score whole (the two-stage
    cut: their head, then what the other sources proposed), a user's list from a batch of
    everyone is the list the user is ranked alone: such a source re-ranks what was proposed to
    that user, never what was proposed to others in the batch (so a list does not depend on
    the batch size, nor the worker's on how many events arrived with it)."""
    model = build("hybrid")
    assert isinstance(model, HybridRecommender)
    bulk = [s for s in model.sources.values() if getattr(s, "bulk", False)]
    assert len(bulk) >= 2  # content and the next-item softmax
    for source in bulk:
        source.retrieval_items = 5  # the 40-item catalogue is "large" for them
    model.candidates_per_source = 3  # and each source proposes a few of it to each user
    for item_id, title, tags in catalogue():
        model.upsert_item(item_id, title=title, tags=tags)
    users: dict[str, UserState] = {}
    learn(model, stream()[:n_events], users)
    everyone = [*users.values(), UserState("stranger")]
    batched = model.recommend_batch(everyone, 3, [u.seen for u in everyone])
    for user, got in zip(everyone, batched, strict=True):
        same_lists(got, model.recommend_batch([user], 3, [user.seen])[0])


def built(name: str, seed: int = 42, **params: object) -> Recommender:
    """``build`` with constructor arguments the registry entry does not set."""
    if name == "hybrid":
        hybrid = default_hybrid(seed=seed)
        for source in list(hybrid.sources):
            spec = registry.REGISTRY[source]
            own = {k: v for k, v in params.items() if k in inspect.signature(spec.cls).parameters}
            if own:
                hybrid.sources[source] = spec.build(seed=seed, **own)
        return hybrid
    spec = registry.REGISTRY[name]
    own = {k: v for k, v in params.items() if k in inspect.signature(spec.cls).parameters}
    return spec.build(seed=seed, **own)


def learned_in_batches(
    name: str, size: int, *, serve: bool = False, **params: object
) -> tuple[Recommender, dict[str, UserState], list[bool]]:
    """The contract stream through :func:`apply_events` in batches of ``size`` events (with
    ``serve``, every user is served a list between batches, as the worker does)."""
    model = built(name, **params)
    for item_id, title, tags in catalogue():
        model.upsert_item(item_id, title=title, tags=tags)
    users: dict[str, UserState] = {}
    events = stream()
    hits: list[bool] = []
    for lo in range(0, len(events), size):
        part = events[lo : lo + size]
        for event in part:
            users.setdefault(event.user_id, UserState(event.user_id))
        for user in users.values() if serve else ():
            user.last_served = names(model.recommend(user, k=3, exclude=user.seen))
        failed: dict[int, Exception] = {}
        hits += apply_events(model, users, part, failed=failed)
        assert not failed, failed
    return model, users, hits


def taste(model: Recommender, users: dict[str, UserState]) -> float:
    """The share of recommended items from the group a user prefers (even users: ``a``)."""
    good = total = 0
    for uid, recs in lists(model, users).items():
        if uid == "stranger":
            continue
        liked = "a" if int(uid[1:]) % 2 == 0 else "b"
        good += sum(item.startswith(liked) for item in names(recs))
        total += len(recs)
    return good / max(total, 1)


def test_learning_in_batches_learns_what_learning_each_event_learns(name: str) -> None:
    """Through :func:`apply_events`, in batches, each event is learned against its user's state
    just before it: with one step per event (``max_batch=1``) every model ends where the
    per-event path (:func:`apply_event`, the same lists served) ends, and the users too."""
    one_by_one, users_1, _ = learned_in_batches(name, 1, max_batch=1)
    batched, users_b, _ = learned_in_batches(name, 37, max_batch=1)
    assert [u.to_dict() for u in users_b.values()] == [u.to_dict() for u in users_1.values()]
    assert lists(batched, users_b) == lists(one_by_one, users_1)
    _, _, hits = learned_in_batches(name, 37, serve=True)
    assert len(hits) == len(stream()) and any(hits)


def test_minibatch_steps_learn_the_tastes_one_step_per_event_learns(name: str) -> None:
    """Sources that learn a batch in minibatch steps (``max_batch``, the default) find the two
    taste groups of the stream as well as they do one event at a time."""
    cls = HybridRecommender if name == "hybrid" else registry.REGISTRY[name].cls
    if name != "hybrid" and "max_batch" not in inspect.signature(cls).parameters:
        return  # learns a batch exactly as one event at a time (the test above)
    per_event, users_1, _ = learned_in_batches(name, 60, max_batch=1)
    minibatch, users_b, _ = learned_in_batches(name, 60)
    assert taste(minibatch, users_b) >= taste(per_event, users_1) - 0.05
    for recs in lists(minibatch, users_b).values():
        assert all(math.isfinite(c.score) for c in recs)


def test_garbage_in_a_batch_neither_fails_nor_poisons(name: str) -> None:
    model, users = learned(name, n_events=200)
    some = list(users.values())[:3]
    garbage = [
        Event(u.user_id, item, ts=ts, kind="rating", value=value)
        for u in some
        for item in ("a1", "never-seen")
        for ts, value in ((1e9, math.nan), (math.inf, 4.0), (1e9, 1e308))
    ]
    garbage += [Event(u.user_id, "a2", ts=1e9, kind="dislike") for u in some]
    snapshots = [users[e.user_id] for e in garbage]
    assert model.learn_many(snapshots, garbage) == {}
    for recs in lists(model, users).values():
        assert all(math.isfinite(c.score) for c in recs)


def test_a_source_gives_reasons_exactly_when_it_says_it_explains(name: str) -> None:
    """The blend takes an item's ``because`` from its first source that ``explains``: a source
    that says so gives reasons, one that does not gives none."""
    if name == "hybrid":
        return
    model, users = learned(name)
    recs = [c for u in users.values() for c in model.recommend(u, k=K, exclude=u.seen)]
    assert recs
    assert any(c.because for c in recs) == model.explains
