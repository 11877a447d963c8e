"""Unit tests of ImplicitMF on seeded synthetic streams with known answers."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

from models.base import UserState
from models.implicit_mf import ImplicitMF

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


def test_a_minibatch_step_moves_only_its_items_negatives_and_users() -> None:
    # One step of 3 events (3 users): the positives move, every other moved row is one of the
    # step's negatives (live items, never the event's own positive), a dead item never moves.
    from models.events import Event

    model = ImplicitMF(n_factors=4, n_negatives=3, seed=5)
    train_implicit(model, two_blocks(events=300))
    model.forget_item("b7")
    before_V, before_b = model._V.copy(), model._b.copy()
    drawn: list[np.ndarray] = []

    class Spy:  # the model's generator, recording what ``integers`` draws
        def __init__(self, rng: np.random.Generator) -> None:
            self.rng = rng

        def __getattr__(self, name: str) -> object:
            return getattr(self.rng, name)

        def integers(self, *args: object, **kwargs: object) -> np.ndarray:
            drawn.append(self.rng.integers(*args, **kwargs))  # type: ignore[call-overload]
            return drawn[-1]

    model._rng = Spy(model._rng)  # type: ignore[assignment]
    steps = [("u1", "a2"), ("u2", "a3"), ("u25", "b4")]
    users = [UserState(u) for u, _ in steps]
    events = [Event(u, item, 0.0, "view", None, None) for u, item in steps]
    assert model.learn_many(users, events) == {}
    (negatives,) = drawn
    assert negatives.shape == (3, 3)
    moved = set(np.flatnonzero((before_V != model._V).any(axis=1) | (model._b != before_b)))
    positives = {model._row[item] for _, item in steps}
    live = {r for r in negatives.ravel().tolist() if model._alive[r]}
    assert positives <= moved <= positives | live
    assert model._row_items.index(None) not in moved  # b7, forgotten
