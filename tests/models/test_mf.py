"""Unit tests of ImplicitMF and RatingMF on seeded synthetic streams with known answers."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from models.base import UserState
from models.mf import ImplicitMF, RatingMF

BLOCK_A = [f"a{n}" for n in range(10)]
BLOCK_B = [f"b{n}" for n in range(10)]


def two_blocks(seed: int = 3, users: int = 40, events: int = 3000) -> list[tuple[str, str]]:
    """Users u0..u19 touch only block A items, u20..u39 only block B items."""
    rng = random.Random(seed)
    stream = []
    for _ in range(events):
        u = rng.randrange(users)
        block = BLOCK_A if u < users // 2 else BLOCK_B
        stream.append((f"u{u}", rng.choice(block[:8])))  # the last 2 of each block held out
    return stream


def train_implicit(model: ImplicitMF, stream: list[tuple[str, str]]) -> dict[str, UserState]:
    users: dict[str, UserState] = {}
    for t, (u, item) in enumerate(stream):
        state = users.setdefault(u, UserState(u))
        model.learn_one(state, item, ts=float(t))
        state.observe(item, ts=float(t))
    for item in ("a8", "a9", "b8", "b9"):  # held-out items: one touch each from their block
        model.learn_one(users["u0" if item[0] == "a" else "u20"], item, ts=0.0)
    return users


def test_implicit_recovers_two_blocks() -> None:
    model = ImplicitMF(n_factors=8, seed=1)
    users = train_implicit(model, two_blocks())
    for u in ("u1", "u5", "u21", "u33"):
        block = BLOCK_A if int(u[1:]) < 20 else BLOCK_B
        recs = model.recommend(users[u], k=5)
        assert len(recs) == 5
        assert sum(c.item_id in block for c in recs) == 5, (u, recs)
        assert all(0 < c.score < 1 and c.sources == ["mf"] for c in recs)
        assert all(c.because and c.because[0] in block for c in recs)
        excl = model.recommend(users[u], k=5, exclude=set(block[:8]))
        assert not {c.item_id for c in excl} & set(block[:8])


def test_implicit_forget_item_and_unknown_user() -> None:
    model = ImplicitMF(n_factors=8, seed=1)
    users = train_implicit(model, two_blocks())
    model.forget_item("a0")
    assert "a0" not in {c.item_id for c in model.recommend(users["u1"], k=20)}
    stranger = UserState("new")
    assert model.recommend(stranger) == []
    n_users = len(model._users)
    stranger.observe("b1", ts=0.0)  # fold-in from the history, without creating state
    assert model.recommend(stranger, k=3)
    assert len(model._users) == n_users and "new" not in model._users


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e308])
def test_implicit_bad_weights_do_not_poison(bad: float) -> None:
    model = ImplicitMF(n_factors=8, seed=1)
    users = train_implicit(model, two_blocks(events=500))
    for _ in range(50):
        model.learn_one(users["u1"], "a1", ts=1.0, weight=bad)
    recs = model.recommend(users["u1"], k=5)
    assert recs and all(math.isfinite(c.score) for c in recs)


def test_implicit_user_cap_and_pickle() -> None:
    model = ImplicitMF(n_factors=8, max_users=10, seed=2)
    users = train_implicit(model, two_blocks(events=800))
    assert len(model._users) <= 10
    clone = pickle.loads(pickle.dumps(model))
    assert clone.recommend(users["u3"], k=5) == model.recommend(users["u3"], k=5)
    for m in (model, clone):  # same seed, same state: learning stays identical
        m.learn_one(users["u3"], "a2", ts=9.0)
    assert clone.recommend(users["u3"], k=5) == model.recommend(users["u3"], k=5)


def rating_stream(seed: int = 5, events: int = 4000) -> list[tuple[str, str, float]]:
    """Two tastes: even users rate block A 5 and block B 1, odd users the opposite."""
    rng = random.Random(seed)
    out = []
    for _ in range(events):
        u, item = rng.randrange(30), rng.choice(BLOCK_A + BLOCK_B)
        likes = (u % 2 == 0) == item.startswith("a")
        out.append((f"u{u}", item, 5.0 if likes else 1.0))
    return out


def test_rating_mae_falls_on_planted_pattern() -> None:
    model = RatingMF(n_factors=4, seed=1)
    errors = []
    for t, (u, item, y) in enumerate(rating_stream()):
        errors.append(abs(model.predict_rating(u, item) - y))
        model.learn_one(UserState(u), item, ts=float(t), value=y)
    first, last = sum(errors[:500]) / 500, sum(errors[-500:]) / 500
    assert first > 1.0 and last < 0.5 * first
    assert model.predict_rating("u0", "a3") > 4.0 and model.predict_rating("u1", "a3") < 2.0
    recs = model.recommend(UserState("u0"), k=5, exclude={"a0"})
    assert [c.item_id[0] for c in recs] == ["a"] * 5 and "a0" not in {c.item_id for c in recs}


def test_rating_read_only_for_unknowns_and_ignores_non_ratings() -> None:
    model = RatingMF(seed=1)
    assert model.predict_rating("x", "y") == 3.0
    for u, item, y in rating_stream(events=300):
        model.learn_one(UserState(u), item, ts=0.0, value=y)
    mf = model.models[0]
    sizes = (len(mf.u_latents), len(mf.i_latents), len(mf.u_biases), len(mf.i_biases))
    assert 1.0 <= model.predict_rating("stranger", "a1") <= 5.0
    assert 1.0 <= model.predict_rating("u1", "unknown-item") <= 5.0
    model.recommend(UserState("stranger"), k=5)
    for bad in (None, math.nan, math.inf, True):
        model.learn_one(UserState("u1"), "new-item", ts=0.0, value=bad)  # type: ignore[arg-type]
    assert (len(mf.u_latents), len(mf.i_latents), len(mf.u_biases), len(mf.i_biases)) == sizes
    model.learn_one(UserState("u1"), "a1", ts=0.0, value=1e9)  # clipped to the range
    assert 1.0 <= model.predict_rating("u1", "a1") <= 5.0


def test_rating_forget_and_pickle() -> None:
    model = RatingMF(n_factors=4, n_models=2, seed=1)
    for u, item, y in rating_stream(events=1500):
        model.learn_one(UserState(u), item, ts=0.0, value=y)
    model.forget_item("a1")
    assert "a1" not in {c.item_id for c in model.recommend(UserState("u0"), k=20)}
    clone = pickle.loads(pickle.dumps(model))
    assert clone.predict_rating("u2", "a4") == model.predict_rating("u2", "a4")
    assert clone.recommend(UserState("u3"), k=5) == model.recommend(UserState("u3"), k=5)
