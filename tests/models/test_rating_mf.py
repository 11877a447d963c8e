"""Unit tests of RatingMF on a seeded synthetic rating stream with a planted pattern."""

from __future__ import annotations

import math
import pickle
import random

from models.base import UserState
from models.rating_mf import RatingMF

BLOCK_A = [f"a{n}" for n in range(10)]
BLOCK_B = [f"b{n}" for n in range(10)]


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


def test_rating_keeps_factors_of_at_most_max_users_least_recently_rated_out_first() -> None:
    model = RatingMF(n_factors=4, n_models=2, seed=1, max_users=50)
    for u in range(200):
        model.learn_one(UserState(f"u{u}"), f"i{u % 7}", ts=0.0, value=4.0)
        model.learn_one(UserState("regular"), "i1", ts=0.0, value=5.0)
    for mf in model.models:
        assert len(mf.u_latents) == len(mf.u_biases) == 50
        assert {"regular", "u199", "u151"} <= set(mf.u_latents)
        assert "u150" not in mf.u_latents and "u0" not in mf.u_biases
    # a user whose factors were let go is predicted as one never seen
    assert model.predict_rating("u0", "i0") == model.predict_rating("nobody", "i0")
    assert model.predict_rating("regular", "i1") != model.predict_rating("nobody", "i1")


def test_rating_checkpoint_from_before_the_user_cap_is_capped_once_restored() -> None:
    model = RatingMF(n_factors=4, n_models=2, seed=1)
    for u in range(30):
        model.learn_one(UserState(f"u{u}"), "i0", ts=0.0, value=3.0)
    state = model.__dict__.copy()
    del state["max_users"], state["_users"]  # the attributes an older checkpoint lacks
    old = RatingMF.__new__(RatingMF)
    old.__setstate__(state)
    assert old.predict_rating("u3", "i0") == model.predict_rating("u3", "i0")
    old.max_users = 20
    old.learn_one(UserState("u0"), "i0", ts=0.0, value=3.0)  # u0 now the most recent
    assert all(len(mf.u_latents) == 20 for mf in old.models)
    assert "u0" in old.models[0].u_latents and "u1" not in old.models[0].u_latents
