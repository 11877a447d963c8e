"""Unit tests of ItemCooccurrence (incremental item-kNN) on seeded synthetic streams."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from models.base import UserState
from models.cf import ItemCooccurrence
from models.ranking import RankBatch, Vocab


def replay(model, events, *, weight: float = 1.0) -> dict[str, UserState]:
    """Feed ``(user_id, item_id)`` pairs: learn before observe, as the engine does."""
    users: dict[str, UserState] = {}
    for ts, (user_id, item) in enumerate(events):
        user = users.setdefault(user_id, UserState(user_id))
        model.learn_one(user, item, ts=float(ts), weight=weight)
        user.observe(item, ts=float(ts))
    return users


def block_stream(seed: int, n_events: int = 3000) -> list[tuple[str, str]]:
    """Two planted groups: users g<k>u* only touch items g<k>i* (plus a shared popular item)."""
    rng = random.Random(seed)
    events = []
    for _ in range(n_events):
        group = rng.randrange(2)
        user = f"g{group}u{rng.randrange(20)}"
        item = "pop" if rng.random() < 0.05 else f"g{group}i{rng.randrange(30)}"
        events.append((user, item))
    return events


def history_user(*items: str) -> UserState:
    user = UserState("me")
    for ts, item in enumerate(items):
        user.observe(item, ts=float(ts))
    return user


def test_recovers_planted_blocks() -> None:
    model = ItemCooccurrence()
    replay(model, block_stream(0))
    for group in (0, 1):
        user = history_user(f"g{group}i1", f"g{group}i2", f"g{group}i3")
        recs = model.recommend(user, k=10, exclude=user.seen)
        assert len(recs) == 10
        assert all(c.item_id.startswith(f"g{group}i") for c in recs)
        assert all(c.sources == ["cf"] and c.score > 0 for c in recs)
        assert all(1 <= len(c.because) <= 2 and set(c.because) <= user.seen for c in recs)
        similar = model.similar_items(f"g{group}i5", k=10)
        assert all(item.startswith(f"g{group}") for item, _ in similar)


def test_cooccurrence_known_answer() -> None:
    model = ItemCooccurrence(window_decay=1.0)
    replay(model, [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "c")])
    # co(a, b) = 2, n_a = 3, n_b = 2: cosine 2 / sqrt(6); co(a, c) = 1, n_c = 1: 1 / sqrt(3)
    assert model.similarity("a", "b") == pytest.approx(2 / 6**0.5)
    assert model.similarity("a", "c") == pytest.approx(1 / 3**0.5)
    assert model.similarity("b", "c") == 0.0
    assert [item for item, _ in model.similar_items("a")] == ["b", "c"]
    recs = model.recommend(history_user("a"), k=5, exclude={"a"})
    assert [(c.item_id, c.because) for c in recs] == [("b", ["a"]), ("c", ["a"])]


def test_recent_items_weigh_more() -> None:
    model = ItemCooccurrence(history_decay=0.5)
    replay(model, [(f"u{n}", item) for n in range(5) for item in ("x", "x2")])
    replay(model, [(f"v{n}", item) for n in range(5) for item in ("y", "y2")])
    recs = model.recommend(history_user("x", "y"), k=2, exclude={"x", "y"})
    assert [(c.item_id, c.because) for c in recs] == [("y2", ["y"]), ("x2", ["x"])]


def test_exclusion_is_honoured() -> None:
    model = ItemCooccurrence()
    replay(model, block_stream(1))
    user = history_user("g0i1")
    full = [c.item_id for c in model.recommend(user, k=10)]
    banned = set(full[:4])
    recs = model.recommend(user, k=10, exclude=banned)
    assert len(recs) == 10 and not banned & {c.item_id for c in recs}


def test_neighbour_caps_bound_memory() -> None:
    model = ItemCooccurrence(max_neighbors=5, window=10)
    rng = random.Random(2)
    replay(model, [(f"u{rng.randrange(100)}", f"i{rng.randrange(500)}") for _ in range(20000)])
    assert len(model) <= 500
    assert max(model._co.size(i) for i in range(len(model._co))) <= 10
    assert len(model.similar_items("i1", k=50)) <= 10


def test_pickle_round_trip() -> None:
    model = ItemCooccurrence(half_life=100.0)
    replay(model, block_stream(3))
    clone = pickle.loads(pickle.dumps(model))
    user = history_user("g1i1", "g1i4")
    assert clone.recommend(user, k=10) == model.recommend(user, k=10)
    assert clone.similar_items("g1i1") == model.similar_items("g1i1")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -1.0, 0.0])
def test_bad_weights_do_not_poison(bad: float) -> None:
    clean, dirty = ItemCooccurrence(), ItemCooccurrence()
    stream = block_stream(4, n_events=500)
    replay(clean, stream)
    replay(dirty, stream)
    replay(dirty, [("x", "g0i1"), ("x", "g1i1"), ("x", "g0i2")], weight=bad)
    user = history_user("g0i1", "g1i1")
    assert dirty.recommend(user, k=10) == clean.recommend(user, k=10)
    dirty.learn_one(UserState("y"), "g0i1", ts=float("nan"))
    assert dirty.recommend(user, k=10) == clean.recommend(user, k=10)


def test_huge_weights_and_long_decay_stay_finite() -> None:
    model = ItemCooccurrence(half_life=1.0)
    u, v = UserState("u"), UserState("v")
    for ts, user, item in [(0.0, u, "old"), (1.0, u, "a"), (200.0, v, "b"), (201.0, v, "c")]:
        model.learn_one(user, item, ts=ts, weight=1e300)  # 200 half-lives: forces a rescale
        user.observe(item, ts=ts)
    for ts, item in [(202.0, "b"), (203.0, "c")]:
        model.learn_one(u, item, ts=ts)
        u.observe(item, ts=ts)
    recs = model.recommend(history_user("b"), k=5)
    assert recs and all(0 < c.score < float("inf") for c in recs)
    assert "c" in {c.item_id for c in recs}
    assert model.similarity("old", "a") == 0.0  # decayed to nothing and dropped
    assert "old" not in model._n


def test_forget_item() -> None:
    model = ItemCooccurrence()
    replay(model, block_stream(5, n_events=500))
    model.forget_item("g0i3")
    recs = model.recommend(history_user("g0i1", "g0i2"), k=30)
    assert "g0i3" not in {c.item_id for c in recs}
    assert "g0i3" not in {item for item, _ in model.similar_items("g0i1", k=50)}


def test_cold_model_and_empty_user() -> None:
    model = ItemCooccurrence()
    assert model.recommend(history_user("a"), k=5) == []
    replay(model, block_stream(6, n_events=100))
    assert model.recommend(UserState("nobody"), k=5) == []


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": 0.5},
        {"alpha": 0.3, "shrinkage": 2.0},
        {"alpha": 0.7, "half_life": 500.0, "history": 4, "max_neighbors": 8},
    ],
)
def test_proposals_for_a_batch_are_each_users_list_under_any_similarity(params: dict) -> None:
    """The compiled batch path (sums, exclusions, top n, the two reasons) lists for every user
    what ``recommend`` lists for that user alone, also with an asymmetric cosine, shrinkage,
    decay and pruned rows: same items in the same order, same scores and reasons."""
    model = ItemCooccurrence(**params)
    users = replay(model, block_stream(seed=7, n_events=1500))
    model.forget_item("g0i3")  # a neighbour without a count: skipped
    everyone = [*users.values(), UserState("stranger"), history_user("g1i2", "nowhere")]
    excludes = [u.seen | ({"g1i5", "pop"} if i % 3 == 0 else set()) for i, u in enumerate(everyone)]
    for n in (1, 5, 40):
        batch = RankBatch(everyone, excludes, Vocab())
        props = model.propose(batch, n)
        why = props.explain(np.arange(len(props)))
        for b, (user, exclude) in enumerate(zip(everyone, excludes, strict=True)):
            mine = np.flatnonzero(props.owner == b).tolist()
            want = model.recommend(user, k=n, exclude=exclude)
            assert [batch.vocab.names[props.items[e]] for e in mine] == [c.item_id for c in want]
            assert [why[e] for e in mine] == [c.because for c in want]
            assert props.scores[mine].tolist() == pytest.approx([c.score for c in want], rel=1e-12)


def test_a_batch_breaks_score_ties_by_first_met_item_and_reason_ties_by_name() -> None:
    """Equal scores list the item the model met first; equal contributions give their
    reasons by name, in the batch as for one user."""
    model = ItemCooccurrence(history_decay=1.0)
    replay(model, [("u1", "x"), ("u1", "q"), ("u2", "x"), ("u2", "p"), ("u3", "z"), ("u3", "y")])
    replay(model, [("u4", "b"), ("u4", "t"), ("u5", "a"), ("u5", "t")])
    me, her = history_user("x"), history_user("b", "a")
    batch = RankBatch([me, her], [me.seen, her.seen], Vocab())
    props = model.propose(batch, 2)
    got = [batch.vocab.names[i] for i in props.items]
    assert got == ["q", "p", "t"]  # q met before p; her one candidate
    assert props.explain(np.arange(3)) == [["x"], ["x"], ["a", "b"]]
    assert [c.item_id for c in model.recommend(me, k=2, exclude=me.seen)] == ["q", "p"]
    assert model.recommend(her, k=1, exclude=her.seen)[0].because == ["a", "b"]


def test_lists_come_from_the_users_15_most_recent_items_by_default() -> None:
    from models.ease import ItemEASE

    cf = ItemCooccurrence()
    for n in range(5):  # "old" and "x" go together; each filler only with a partner of its own
        for a, b in [("old", "x"), *((f"f{k}", f"p{k}") for k in range(16))]:
            user = UserState(f"w{n}-{a}")
            for item in (a, b):
                cf.learn_one(user, item, ts=0.0)
                user.observe(item, ts=0.0)

    def reached(fillers: int) -> bool:
        user = UserState("u")
        for item in ["old", *(f"f{k}" for k in range(fillers))]:
            user.observe(item, ts=0.0)
        items = {c.item_id for c in cf.recommend(user, k=50, exclude=user.seen)}
        assert {f"p{k}" for k in range(fillers)} <= items
        return "x" in items

    assert reached(14) and not reached(15)  # "old" 15th most recent, then 16th
    assert ItemEASE().history == cf.history == 15
