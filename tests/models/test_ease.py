"""Unit tests of ItemEASE (EASE over the streaming co-occurrence) on synthetic streams."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator

import numpy as np
import pytest

from models.base import UserState
from models.ease import ItemEASE, solve_ease
from tests.models.test_cf import block_stream, history_user, replay


def test_solve_ease_matches_closed_form_and_has_zero_diagonal() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((50, 6)) < 0.3).astype(float)
    gram = x.T @ x
    weights = solve_ease(gram, l2=2.0)
    p = np.linalg.inv(gram + 2.0 * np.eye(6))
    expected = np.eye(6) - p / np.diag(p)
    assert np.allclose(weights, expected, atol=1e-5)
    assert not np.diag(weights).any()


def test_recommends_items_of_the_users_group_first() -> None:
    model = ItemEASE(refit_every=100)
    replay(model, block_stream(seed=1))
    recs = model.recommend(history_user("g0i1", "g0i2"), k=10, exclude={"g0i1", "g0i2"})
    assert len(recs) == 10
    assert all(c.item_id.startswith("g0") or c.item_id == "pop" for c in recs)
    assert recs[0].because and set(recs[0].because) <= {"g0i1", "g0i2"}


def test_solve_is_put_in_use_at_a_fixed_event_whatever_the_thread_timing() -> None:
    events = block_stream(seed=2, n_events=1000)
    a, b = ItemEASE(refit_every=40), ItemEASE(refit_every=40)
    users_a, users_b = replay(a, events), replay(b, events)
    for user in ("g0u1", "g1u3"):
        recs_a = a.recommend(users_a[user], k=10, exclude=users_a[user].seen)
        recs_b = b.recommend(users_b[user], k=10, exclude=users_b[user].seen)
        assert [(c.item_id, c.score) for c in recs_a] == [(c.item_id, c.score) for c in recs_b]


def test_covers_only_the_most_interacted_items() -> None:
    model = ItemEASE(refit_every=50, max_items=10)
    replay(model, block_stream(seed=3))
    head = set(model._items[i] for i in model._head)
    assert len(head) == 10 and "pop" in head
    user = history_user(*[f"g{g}i{i}" for g in (0, 1) for i in range(30)])
    recs = model.recommend(user, k=50, exclude=())
    assert recs and {c.item_id for c in recs} <= head


def test_pickled_model_recommends_the_same_after_restore() -> None:
    model = ItemEASE(refit_every=50)
    replay(model, block_stream(seed=4))
    model.refit()
    restored = pickle.loads(pickle.dumps(model))
    assert restored._B is None  # not stored: solved again on first use
    user = history_user("g1i4", "g1i5")
    before = [(c.item_id, round(c.score, 5)) for c in model.recommend(user, k=10, exclude=())]
    after = [(c.item_id, round(c.score, 5)) for c in restored.recommend(user, k=10, exclude=())]
    assert before == after


def test_forgotten_item_is_never_recommended_even_if_a_solve_was_running() -> None:
    model = ItemEASE(refit_every=7)
    users = replay(model, block_stream(seed=5, n_events=600))
    model.forget_item("g0i3")
    replay(model, [("g0u1", "g0i4")])  # may put in use a solve started before the delete
    user = users["g0u2"]
    assert "g0i3" not in {c.item_id for c in model.recommend(user, k=40, exclude=())}


def test_unknown_user_gets_nothing_and_bad_parameters_are_refused() -> None:
    model = ItemEASE(refit_every=10)
    assert model.recommend(UserState("nobody"), k=5) == []
    replay(model, block_stream(seed=6, n_events=200))
    assert model.recommend(UserState("nobody"), k=5) == []
    with pytest.raises(ValueError):
        ItemEASE(l2=0)
    with pytest.raises(ValueError):
        ItemEASE(max_items=1)


def test_the_gram_of_pruned_neighbour_lists_keeps_either_sides_count() -> None:
    # Past 2 * max_neighbors + 1 items the lists are pruned: a pair's entry
    # is the larger of its two sides' counts, the diagonal the items' counts.
    model = ItemEASE(refit_every=10_000, max_neighbors=5, max_items=40)
    replay(model, block_stream(seed=7, n_events=1500))
    head, gram = model._gram()
    expected = np.zeros((len(head), len(head)))
    for r, i in enumerate(head.tolist()):
        for c, j in enumerate(head.tolist()):
            both = (model._co.get(i, j), model._co.get(j, i))
            expected[r, c] = model._n[i] if i == j else max(both)
    assert np.array_equal(gram, expected) and (gram != gram.T).sum() == 0


@pytest.mark.parametrize("n", [60, 600])  # one block of the in-place mirroring, or several
def test_solve_ease_gives_the_weights_of_scipys_lapack_wrappers(n: int) -> None:
    from scipy.linalg import lapack

    rng = np.random.default_rng(1)
    x = (rng.random((4 * n, n)) < 0.1).astype(float)
    regularised = (x.T @ x + 3.0 * np.eye(n)).astype(np.float32)
    factor, _ = lapack.spotrf(regularised, lower=True, clean=False)
    inverse, _ = lapack.spotri(factor, lower=True)
    inverse = np.tril(inverse) + np.tril(inverse, -1).T
    expected = -inverse / np.diag(inverse)
    np.fill_diagonal(expected, 0.0)
    assert np.array_equal(solve_ease(x.T @ x, l2=3.0), expected.astype(np.float32))


def solves_of(
    model: ItemEASE, events: list[tuple[str, str]]
) -> Iterator[tuple[int, UserState, bool]]:
    """Learn ``events`` one at a time; after each, its number (from 1), its user and whether
    it started a solve."""
    users: dict[str, UserState] = {}
    for n, (user_id, item) in enumerate(events, start=1):
        user = users.setdefault(user_id, UserState(user_id))
        pending = model._pending
        model.learn_one(user, item, ts=float(n))
        user.observe(item, ts=float(n))
        yield n, user, model._pending is not None and model._pending is not pending


def test_a_head_past_refit_items_is_solved_less_often() -> None:
    # 61 items: a head of 40 (max_items) past 20 (refit_items) is solved every
    # 10 * (40 / 20) ** 3 = 80 events, not every 10
    model = ItemEASE(refit_every=10, refit_items=20, max_items=40)
    solves = [
        n for n, _, started in solves_of(model, block_stream(seed=8, n_events=600)) if started
    ]
    assert len(model._head) == 40 and model._interval == 80
    gaps = [b - a for a, b in itertools.pairwise(solves)]
    assert gaps and set(gaps[-3:]) == {80}
    assert ItemEASE(refit_every=10, refit_items=20)._refit_interval(10) == 10


def test_a_model_pickled_before_refit_items_existed_takes_the_default_schedule() -> None:
    import pickle

    old = ItemEASE()
    del old.__dict__["refit_items"]  # as pickled by the code before the scaled interval
    restored = pickle.loads(pickle.dumps(old))
    assert restored.refit_items == ItemEASE().refit_items
    assert restored._refit_interval(2000) == ItemEASE()._refit_interval(2000) > restored.refit_every


def test_a_larger_heads_solve_is_put_in_use_a_quarter_of_its_interval_after_it_began() -> None:
    # the head of 40 items is solved every 80 events (see above): each solve may take 20
    # events' time before a list waits for it, not refit_every // 4 = 2
    model = ItemEASE(refit_every=10, refit_items=20, max_items=40)
    began, waited = 0, []
    for n, user, started in solves_of(model, block_stream(seed=8, n_events=600)):
        began = n if started else began
        pending = model._pending
        model.recommend(user, k=5, exclude=user.seen)  # a list: puts a due solve in use
        if pending is not None and model._pending is None:
            waited.append(n - began)
    assert model._interval == 80 and waited[-3:] == [20, 20, 20]


@pytest.mark.parametrize("max_neighbors", [60, 5], ids=["whole lists", "pruned lists"])
def test_the_gram_a_solve_builds_on_its_thread_is_the_counts_when_it_was_due(
    max_neighbors: int,
) -> None:
    # The solve's thread assembles the Gram matrix (the event loop only copies what it reads):
    # what it builds is the counts at the moment the solve was due, whatever is learned while
    # the thread has not yet run.
    model = ItemEASE(refit_every=10_000, max_neighbors=max_neighbors, max_items=40)
    stream = block_stream(seed=5, n_events=2000)
    replay(model, stream[:1500])
    head, expected = model._gram()
    head_then, build = model._gram_snapshot()
    replay(model, stream[1500:])  # counts and neighbour lists move on
    assert not np.array_equal(model._gram()[1], expected)
    assert np.array_equal(head_then, head) and np.array_equal(build(), expected)
