"""The switching hybrid: phases at the configured thresholds, blending, sources, deletions."""

from __future__ import annotations

import pickle

import pytest

from models import registry
from models.base import Candidate, Recommender, UserState
from models.events import Event, apply_event, apply_events
from models.factory import default_hybrid
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy
from models.popularity import DecayedPopularity


def feed(hybrid: HybridRecommender, user: UserState, item: str, ts: float) -> bool:
    """One event through the worker's path (:func:`models.events.apply_event`)."""
    return apply_event(hybrid, user, Event(user.user_id, item, ts))


class Fixed(Recommender):
    """A source that always proposes the same scored items."""

    def __init__(self, name: str, scores: dict[str, float]) -> None:
        self.name = name
        self.scores = scores

    def learn_one(self, user, item_id, *, ts, weight=1.0, value=None) -> None:
        pass

    def recommend(self, user, k=10, exclude=()):
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        return [
            Candidate(i, s, [self.name], [f"{self.name}-why"])
            for i, s in ranked
            if i not in exclude
        ][:k]


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        ((1, 5, 20), ["cold", "warm", "warm", "active", "active", "established"]),
        ((2, 3, 4), ["cold", "cold", "warm", "active", "established", "established"]),
    ],
)
def test_users_switch_phase_exactly_at_the_thresholds(thresholds, expected):
    policy = SwitchingPolicy.from_thresholds(thresholds)
    counts = [0, 1, 4, 5, 19, 20] if thresholds == (1, 5, 20) else [0, 1, 2, 3, 4, 50]
    assert [policy.phase_for(n).name for n in counts] == expected


def test_bad_thresholds_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match="increasing"):
        SwitchingPolicy.from_thresholds((5, 1, 20))
    with pytest.raises(ValueError, match="start at 0"):
        SwitchingPolicy([Phase("x", 3)])


def test_blend_normalises_each_source_and_keeps_every_source_that_proposed_an_item():
    policy = SwitchingPolicy([Phase("all", 0, {"a": 0.5, "b": 0.5})])
    hybrid = HybridRecommender(
        {"a": Fixed("a", {"x": 100.0, "y": 50.0}), "b": Fixed("b", {"y": 2.0, "z": 1.0})}, policy
    )
    recs = hybrid.recommend(UserState("u"), k=3)
    assert [c.item_id for c in recs] == ["y", "x", "z"]  # y: .25 + .5, x: .5, z: .25
    assert recs[0].score == pytest.approx(0.75)
    assert recs[0].sources == ["a", "b"] and recs[0].because == ["a-why"]


class Unexplained(Fixed):
    """A source that gives no reasons (as popularity): its candidates' ``because`` is empty."""

    explains = False

    def recommend(self, user, k=10, exclude=()):
        listed = super().recommend(user, k, exclude)
        return [Candidate(c.item_id, c.score, c.sources) for c in listed]


def test_an_items_reasons_are_those_of_its_first_source_in_the_phase_that_gives_reasons():
    """One source's reasons ("because you watched A and B"), not a merge of every source's:
    the first of the phase's order that proposed the item and gives reasons."""
    policy = SwitchingPolicy([Phase("all", 0, {"pop": 0.5, "a": 0.3, "b": 0.2})])
    sources = {
        "pop": Unexplained("pop", {"x": 1.0, "y": 1.0}),
        "a": Fixed("a", {"y": 1.0}),
        "b": Fixed("b", {"x": 1.0, "y": 1.0, "z": 1.0}),
    }
    recs = {c.item_id: c for c in HybridRecommender(sources, policy).recommend(UserState("u"))}
    assert (recs["y"].sources, recs["y"].because) == (["pop", "a", "b"], ["a-why"])
    assert (recs["x"].sources, recs["x"].because) == (["pop", "b"], ["b-why"])
    assert (recs["z"].sources, recs["z"].because) == (["b"], ["b-why"])


def test_phase_weights_decide_which_sources_serve_a_user():
    policy = SwitchingPolicy.from_thresholds(
        (1, 2, 3),
        [
            Phase("cold", 0, {"a": 1.0}),
            Phase("w", 1, {"b": 1.0}),
            Phase("x", 2, {"a": 1.0}),
            Phase("y", 3, {"b": 1.0}),
        ],
    )
    hybrid = HybridRecommender({"a": Fixed("a", {"p": 1.0}), "b": Fixed("b", {"q": 1.0})}, policy)
    user = UserState("u")
    assert hybrid.recommend(user, k=1)[0].sources == ["a"]
    user.observe("seen", ts=0.0)
    assert hybrid.recommend(user, k=1)[0].sources == ["b"]


def test_popularity_fills_a_short_list_and_seen_items_are_excluded():
    pop = DecayedPopularity()
    hybrid = HybridRecommender(
        {"popularity": pop, "a": Fixed("a", {"x": 1.0})},
        SwitchingPolicy([Phase("all", 0, {"a": 1.0})]),
    )
    for item in ["p1", "p1", "p2", "x"]:
        pop.learn_one(UserState("o"), item, ts=0.0)
    recs = hybrid.recommend(UserState("u"), k=3, exclude={"p2"})
    assert [c.item_id for c in recs] == ["x", "p1"]
    assert recs[1].sources == ["popularity"]


def test_a_deleted_item_is_never_recommended_until_it_is_listed_again():
    hybrid = default_hybrid()
    for n in range(5):
        feed(hybrid, UserState(f"o{n}"), "gone", float(n))
        feed(hybrid, UserState(f"p{n}"), "stays", float(n))
    assert "gone" in [c.item_id for c in hybrid.recommend(UserState("u"), k=5)]
    hybrid.forget_item("gone")
    clone = pickle.loads(pickle.dumps(hybrid))
    for engine in (hybrid, clone):
        for n in range(6):  # in every phase
            user = UserState("v")
            for i in range(n * 4):
                user.observe(f"other{i}", ts=float(i))
            assert "gone" not in [c.item_id for c in engine.recommend(user, k=10)]
    hybrid.upsert_item("gone", title="back")  # re-listed: it starts afresh
    feed(hybrid, UserState("w"), "gone", 9.0)
    feed(hybrid, UserState("w2"), "gone", 9.0)
    assert "gone" in [c.item_id for c in hybrid.recommend(UserState("u"), k=5)]


def test_an_event_is_scored_then_learned_and_counts_hits_against_the_last_served_list():
    hybrid = default_hybrid()
    user = UserState("u")
    user.last_served = ["a", "b"]
    assert feed(hybrid, user, "b", 1.0) is True
    assert feed(hybrid, user, "c", 2.0) is False
    assert user.hits == 1 and user.interactions == 2 and user.recent == ["b", "c"]


def test_every_default_phase_weights_sources_the_worker_runs_and_known_ones_only() -> None:
    hybrid = default_hybrid()
    for phase in hybrid.policy.phases:
        assert set(phase.weights) & set(hybrid.sources), phase.name
        assert set(phase.weights) <= set(registry.REGISTRY), phase.name
    established = hybrid.policy.phase_for(20).weights
    assert max(established, key=established.__getitem__) in {"cf", "ease"}


def test_default_hybrid_serves_an_established_user_from_its_item_models() -> None:
    hybrid = default_hybrid()
    users = {u: UserState(u) for u in ("a", "b", "c")}
    for ts in range(40):  # three users walk the same catalogue in the same order
        for uid, user in users.items():
            feed(hybrid, user, f"i{(ts + ord(uid)) % 40}", float(ts))
    hybrid.sources["ease"].refit()
    me = UserState("me")
    for ts in range(25):
        feed(hybrid, me, f"i{ts}", 100.0 + ts)
    recs = hybrid.recommend(me, k=5, exclude=me.seen)
    assert hybrid.phase(me).name == "established"
    assert recs and recs[0].item_id == "i25"
    assert {"cf", "ease"} <= set(recs[0].sources)


def test_default_hybrid_serves_a_newcomer_what_other_newcomers_picked_first() -> None:
    hybrid = default_hybrid(thresholds=(1, 5, 20))
    for n in range(4):  # every user starts on the welcome item, then regulars pile on "hit"
        user = UserState(f"u{n}")
        feed(hybrid, user, "welcome", float(n))
        for ts in range(6):
            feed(hybrid, user, "hit" if ts % 2 else f"x{n}-{ts}", 10.0 + n + ts)
    assert hybrid.sources["popularity"].recommend(UserState("q"), k=1)[0].item_id == "hit"
    recs = hybrid.recommend(UserState("new"), k=3)
    assert hybrid.phase(UserState("new")).name == "cold"
    assert recs[0].item_id == "welcome" and recs[0].sources == ["cohort"]
    assert len(recs) == 3  # a short cohort list is filled from overall popularity


def test_a_checkpoint_restored_by_newer_code_takes_its_policy_and_line_up() -> None:
    # A checkpoint pickled under other thresholds, with a source this code no longer uses and
    # without one it added: the learned sources survive, the configuration is the current one.
    old = HybridRecommender(
        {"popularity": DecayedPopularity(), "gone": Fixed("gone", {"x": 1.0})},
        SwitchingPolicy.from_thresholds([2, 3, 4]),
    )
    for user_id in ("a", "b", "c"):
        old.learn_one(UserState(user_id), "hit", ts=0.0)
    restored = pickle.loads(pickle.dumps(old))
    current = HybridRecommender(
        {"popularity": DecayedPopularity(), "added": Fixed("added", {"y": 1.0})},
        SwitchingPolicy.from_thresholds([1, 5, 20]),
    )
    engine = restored.reconfigured(current)
    assert sorted(engine.sources) == ["added", "popularity"]
    assert engine.sources["added"] is current.sources["added"]
    assert engine.policy is current.policy
    assert engine.phase(UserState("u", interactions=1)).name == "warm"
    assert [c.item_id for c in engine.sources["popularity"].recommend(UserState("u"), k=1)] == [
        "hit"
    ]


class Rater(Fixed):
    """A fixed source that also predicts ratings (the RatingPredictor capability)."""

    def predict_rating(self, user_id: str, item_id: str) -> float:
        return 4.5


def test_the_fallback_is_configured_not_named_in_the_hybrid() -> None:
    trend = DecayedPopularity()
    for item in ["t1", "t1", "t2"]:
        trend.learn_one(UserState("o"), item, ts=0.0)
    policy = SwitchingPolicy([Phase("all", 0, {"a": 1.0})])
    sources = {"trend": trend, "a": Fixed("a", {"x": 1.0})}
    hybrid = HybridRecommender(sources, policy, fallback="trend")
    recs = hybrid.recommend(UserState("u"), k=3)
    assert [(c.item_id, c.sources) for c in recs] == [
        ("x", ["a"]),
        ("t1", ["trend"]),
        ("t2", ["trend"]),
    ]
    assert hybrid.popularity("t1") == 2.0 and hybrid.popularity("nope") == 0.0
    assert hybrid.trending(1) == [("t1", 2.0)]
    alone = HybridRecommender(sources, policy, fallback=None)
    assert [c.item_id for c in alone.recommend(UserState("u"), k=3)] == ["x"]
    assert alone.popularity("t1") is None and alone.trending(5) == []
    unweighted = HybridRecommender(sources, SwitchingPolicy([Phase("all", 0, {"b": 1.0})]))
    assert unweighted.fallback == "popularity" and unweighted.recommend(UserState("u")) == []


def test_a_fallback_without_scores_or_trends_answers_none_and_nothing() -> None:
    hybrid = HybridRecommender({"a": Fixed("a", {"x": 1.0})}, fallback="a")
    assert hybrid.popularity("x") is None and hybrid.trending(3) == []


def test_ratings_come_from_the_first_source_that_predicts_them() -> None:
    sources = {"a": Fixed("a", {"x": 1.0}), "r": Rater("r", {}), "pop": DecayedPopularity()}
    hybrid = HybridRecommender(sources)
    assert hybrid.predict_rating("u", "x") == 4.5
    assert HybridRecommender({"a": Fixed("a", {})}).predict_rating("u", "x") is None
    engine = default_hybrid()
    assert engine.predict_rating("u", "x") == engine.sources["rating"].predict_rating("u", "x")


def test_a_hybrid_pickled_before_the_fallback_existed_uses_the_registry_fallback() -> None:
    old = default_hybrid()
    for n in range(3):
        feed(old, UserState(f"u{n}"), "hit", float(n))
    del old.__dict__["fallback"]  # what a checkpoint from before the attribute holds
    restored = pickle.loads(pickle.dumps(old))
    assert "fallback" not in restored.__dict__ and restored.fallback == "popularity"
    assert restored.popularity("hit") > 0 and restored.trending(1)[0][0] == "hit"
    engine = restored.reconfigured(default_hybrid())
    assert engine.fallback == "popularity" and engine.recommend(UserState("new"), k=1)


def test_what_each_source_costs_is_counted_per_stage_taken_once_and_never_pickled() -> None:
    hybrid = default_hybrid()
    users = {f"u{n}": UserState(f"u{n}") for n in range(12)}
    events = [Event(f"u{n % 12}", f"i{(n * 7) % 30}", float(n)) for n in range(240)]
    apply_events(hybrid, users, events)
    hybrid.recommend_batch(list(users.values()), 10, [u.seen for u in users.values()])
    spent = hybrid.take_cpu_seconds()
    assert {(name, "learn") for name in hybrid.sources} <= set(spent)
    ranked = {name for name, stage in spent if stage == "rank"}
    assert {"blend", "cf", "seq"} <= ranked <= {*hybrid.sources, "blend"}
    assert all(seconds >= 0.0 for seconds in spent.values()) and sum(spent.values()) > 0.0
    assert hybrid.take_cpu_seconds() == {}  # taken: counting starts again
    hybrid.recommend(users["u0"])
    assert "_cpu_seconds" not in pickle.loads(pickle.dumps(hybrid)).__dict__
