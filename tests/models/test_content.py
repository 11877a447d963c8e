"""Unit tests of the content model: known answers on a small seeded catalogue."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from models.base import UserState
from models.content import ContentModel

GENRES = ["sci-fi", "romance", "western", "horror"]
WORDS = {
    "sci-fi": ["space", "alien", "robot", "galaxy", "starship"],
    "romance": ["love", "wedding", "kiss", "heart", "paris"],
    "western": ["cowboy", "sheriff", "desert", "horse", "saloon"],
    "horror": ["ghost", "blood", "haunted", "night", "scream"],
}


def catalogue(model: ContentModel, per_genre: int = 25, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    genre_of = {}
    for g in GENRES:
        for n in range(per_genre):
            item = f"{g}-{n}"
            words = rng.sample(WORDS[g], 3)
            model.upsert_item(item, title=f"{words[0]} {n}", text=" ".join(words), tags=[g])
            genre_of[item] = g
    return genre_of


def test_scifi_user_gets_scifi_because_tag() -> None:
    model = ContentModel()
    genre_of = catalogue(model)
    user = UserState("u")
    for n in range(5):
        model.learn_one(user, f"sci-fi-{n}", ts=float(n))
        user.observe(f"sci-fi-{n}", ts=float(n))
    recs = model.recommend(user, k=10, exclude=user.seen)
    assert len(recs) == 10
    assert all(genre_of[c.item_id] == "sci-fi" for c in recs)
    assert not {c.item_id for c in recs} & user.seen
    assert all("tag:sci-fi" in c.because and len(c.because) <= 3 for c in recs)
    assert all(c.sources == ["content"] and c.score > 0 for c in recs)
    assert [c.score for c in recs] == sorted((c.score for c in recs), reverse=True)


def test_deleted_items_never_come_back() -> None:
    model = ContentModel()
    catalogue(model)
    user = UserState("u")
    model.learn_one(user, "western-0", ts=0.0)
    gone = {f"western-{n}" for n in range(1, 25)}
    for item in gone:
        model.forget_item(item)
    assert "western-3" not in model
    recs = model.recommend(user, k=100)
    assert recs and not {c.item_id for c in recs} & gone
    assert not {c.item_id for c in model.similar_items("western-0", k=100)} & gone
    model.learn_one(user, "western-5", ts=1.0)  # deleted: a no-op
    assert not {c.item_id for c in model.recommend(user, k=100)} & gone


def test_compaction_keeps_answers() -> None:
    model = ContentModel()
    for n in range(3000):
        model.upsert_item(f"i{n}", tags=["a" if n % 2 else "b"])
    for n in range(2, 3000):
        model.forget_item(f"i{n}")
    assert len(model) == 2
    assert [c.item_id for c in model.similar_items("i0", k=5)] == []
    model.upsert_item("x", tags=["b"])
    assert [c.item_id for c in model.similar_items("i0", k=5)] == ["x"]


def test_upsert_replaces_vector() -> None:
    model = ContentModel()
    catalogue(model)
    model.upsert_item("x", title="cowboy", tags=["western"])
    assert all(c.item_id.startswith("western") for c in model.similar_items("x", k=5))
    model.upsert_item("x", title="ghost", tags=["horror"])
    assert all(c.item_id.startswith("horror") for c in model.similar_items("x", k=5))
    assert "x" not in {c.item_id for c in model.similar_items("western-0", k=100)}
    assert len(model) == 4 * 25 + 1


def test_profile_capped_finite_and_json_able() -> None:
    model = ContentModel(max_profile_features=8)
    catalogue(model)
    user = UserState("u")
    for n, item in enumerate(f"{g}-{i}" for g in GENRES for i in range(10)):
        model.learn_one(user, item, ts=float(n))
    assert 0 < len(user.profile) <= 8
    assert all(isinstance(f, str) and type(v) is float for f, v in user.profile.items())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_bad_weights_do_not_poison(bad: float) -> None:
    model = ContentModel()
    catalogue(model)
    user = UserState("u")
    model.learn_one(user, "horror-1", ts=0.0)
    before = dict(user.profile)
    model.learn_one(user, "horror-2", ts=1.0, weight=bad)
    model.learn_one(user, "horror-2", ts=math.nan)
    assert user.profile == before
    model.learn_one(user, "horror-3", ts=2.0, weight=1e300)  # clipped, then rescaled
    assert all(math.isfinite(v) and abs(v) <= 1e3 for v in user.profile.values())
    assert model.recommend(user, k=3)


def test_a_profile_holding_non_finite_values_learns_without_them() -> None:
    model = ContentModel()
    catalogue(model)
    clean, poisoned = UserState("u"), UserState("v")
    for user in (clean, poisoned):
        model.learn_one(user, "horror-1", ts=0.0)
    poisoned.profile = {**poisoned.profile, "x": math.nan, "y": math.inf, "z": -math.inf}
    for user in (clean, poisoned):
        model.learn_one(user, "horror-2", ts=1.0)
    assert poisoned.profile == clean.profile


def test_dislike_subtracts_and_decay_forgets() -> None:
    model = ContentModel(half_life=10.0)
    catalogue(model)
    user = UserState("u")
    model.learn_one(user, "romance-0", ts=0.0)
    model.learn_one(user, "western-0", ts=1000.0)  # 100 half-lives later: romance is gone
    assert {c.item_id.split("-")[0] for c in model.recommend(user, k=10)} == {"western"}
    model.learn_one(user, "western-1", ts=1000.0, weight=-5.0)
    assert user.profile["tag:western"] < 0
    assert all(not c.item_id.startswith("western") for c in model.recommend(user, k=10))


def test_unknown_item_is_noop_and_pickle_round_trip() -> None:
    model = ContentModel()
    catalogue(model)
    user = UserState("u")
    model.learn_one(user, "not-in-catalogue", ts=0.0)
    assert user.profile == {} and user.profile_ts is None
    assert model.recommend(user) == [] and model.similar_items("nope") == []
    model.learn_one(user, "sci-fi-1", ts=0.0)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.recommend(user, k=10) == model.recommend(user, k=10)
    assert clone.similar_items("romance-2", k=5) == model.similar_items("romance-2", k=5)
