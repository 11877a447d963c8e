"""Unit tests of NextItemSoftmax on seeded synthetic streams with known next items."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

from models.base import UserState
from models.events import Event
from models.sequence import NextItemSoftmax

CYCLE = [f"i{n}" for n in range(10)]  # i0 -> i1 -> ... -> i9 -> i0


def train_walks(model: NextItemSoftmax, users: int = 400, seed: int = 5) -> None:
    """Each user takes 4 consecutive items of the cycle from a random start: every item is
    followed by its successor, and co-occurs as often with its predecessor."""
    rng = random.Random(seed)
    for n in range(users):
        user = UserState(f"u{n}")
        start = rng.randrange(len(CYCLE))
        for step in range(4):
            item = CYCLE[(start + step) % len(CYCLE)]
            model.learn_one(user, item, ts=float(n))
            user.observe(item, ts=float(n))


def history(*items: str) -> UserState:
    user = UserState("probe")
    for item in items:
        user.observe(item, ts=0.0)
    return user


@pytest.mark.parametrize("sampled", [False, True])
def test_recommends_the_successor_not_the_predecessor(sampled: bool) -> None:
    # After i3, i4 the users took i5; i2 co-occurs with i3 and i4 just as often, so only the
    # order tells them apart. The first case learns with the full softmax, the second with
    # the (default) sampled one.
    kwargs = {"n_negatives": 4} if sampled else {"full_softmax_items": 100}
    model = NextItemSoftmax(n_factors=8, seed=1, **kwargs)
    train_walks(model)
    for seen, successor in [(("i3", "i4"), "i5"), (("i8", "i9"), "i0"), (("i1", "i2", "i3"), "i4")]:
        user = history(*seen)
        recs = model.recommend(user, k=3, exclude=user.seen)
        assert recs[0].item_id == successor, (seen, recs)
        assert recs[0].score == 1.0 and all(0 < c.score <= 1 for c in recs)
        assert recs[0].sources == ["seq"] and recs[0].because[0] in seen


def test_excludes_seen_and_deleted_items() -> None:
    model = NextItemSoftmax(n_factors=8, seed=1)
    train_walks(model)
    user = history("i3", "i4")
    assert "i5" not in {c.item_id for c in model.recommend(user, k=8, exclude={"i5"})}
    model.forget_item("i5")
    assert "i5" not in {c.item_id for c in model.recommend(user, k=8)}
    model.upsert_item("i5", tags=["x"])  # back in the catalogue
    assert "i5" in {c.item_id for c in model.recommend(user, k=8)}


@pytest.mark.parametrize("sampled", [False, True])
def test_a_new_item_inherits_what_its_tags_learned(sampled: bool) -> None:
    # After "start", users take one of several comedies; a comedy the stream has never seen
    # must rank above an unseen drama, through the comedy tag's factors alone.
    kwargs = {"n_negatives": 4} if sampled else {"full_softmax_items": 100}
    model = NextItemSoftmax(n_factors=8, seed=2, **kwargs)
    for item in ("c1", "c2", "c3", "c4", "new-comedy"):
        model.upsert_item(item, tags=["comedy"])
    for item in ("d1", "new-drama"):
        model.upsert_item(item, tags=["drama"])
    rng = random.Random(0)
    for n in range(300):
        user = UserState(f"u{n}")
        for item in ("start", rng.choice(["c1", "c2", "c3", "c4"])):
            model.learn_one(user, item, ts=0.0)
            user.observe(item, ts=0.0)
    user = history("start")
    ranked = [c.item_id for c in model.recommend(user, k=10, exclude={"c1", "c2", "c3", "c4"})]
    assert ranked.index("new-comedy") < ranked.index("new-drama"), ranked


def test_learns_nothing_from_dislikes_or_a_first_event() -> None:
    model = NextItemSoftmax(n_factors=4, seed=0)
    user = UserState("u")
    model.learn_one(user, "a", ts=0.0)  # no earlier item: nothing to learn from
    user.observe("a", ts=0.0)
    before = pickle.dumps(model)
    for weight in (-1.0, 0.0, math.nan):
        model.learn_one(user, "b", ts=1.0, weight=weight)
    assert pickle.dumps(model) == before
    model.learn_one(user, "b", ts=1.0)
    assert pickle.dumps(model) != before and len(model) == 2
    assert model.recommend(UserState("stranger")) == []


def test_survives_pickling_with_the_same_lists() -> None:
    model = NextItemSoftmax(n_factors=8, seed=1)
    train_walks(model, users=40)
    copy = pickle.loads(pickle.dumps(model))
    user = history("i6")
    assert [(c.item_id, c.score) for c in copy.recommend(user, k=4)] == [
        (c.item_id, c.score) for c in model.recommend(user, k=4)
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_factors": 0},
        {"lr": 0.0},
        {"history": 0},
        {"history_decay": 1.5},
        {"full_softmax_items": -1},
        {"n_negatives": 0},
        {"recent_share": 1.0},
        {"init_scale": -1.0},
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        NextItemSoftmax(**kwargs)  # type: ignore[arg-type]


def test_sampled_negatives_favour_recent_targets_and_carry_their_rate() -> None:
    # Half the negatives come from recent targets: an item that was the target of most recent
    # steps is drawn far more often than a uniform draw would, and its logit correction
    # (log of its expected count) is larger than a rarely taken item's.
    model = NextItemSoftmax(n_factors=4, seed=3, n_negatives=200, recent_share=0.5)
    for item in ["start"] + [f"filler{n}" for n in range(100)]:
        model.upsert_item(item)
    for n in range(50):
        user = history("start")
        model.learn_one(user, "hot" if n % 5 else f"cold{n}", ts=0.0)
    hot, cold = model._row["hot"], model._row["cold0"]
    cand, log_q = model._sample(cold, len(model))
    assert cand[0] == cold  # the target leads the candidates
    drawn = cand[1:].tolist()
    assert drawn.count(hot) / len(drawn) > 0.35 > 10 / len(model)
    assert log_q[drawn.index(hot) + 1] > log_q[0] + 1.0


def test_a_model_checkpointed_before_recent_share_existed_still_learns() -> None:
    model = NextItemSoftmax(n_factors=4, seed=0, n_negatives=4)
    train_walks(model, users=5)
    state = pickle.loads(pickle.dumps(model)).__dict__
    del state["recent_share"]  # what an older checkpoint holds
    old = NextItemSoftmax.__new__(NextItemSoftmax)
    old.__setstate__(state)
    user = history("i3", "i4")
    old.learn_one(user, "i5", ts=0.0)  # sampled mode reads recent_share
    assert old.recent_share == 0.5 and old.recommend(user, k=3)


def _same_state(a: NextItemSoftmax, b: NextItemSoftmax) -> None:
    assert vars(a).keys() - {"_tag_csr"} == vars(b).keys() - {"_tag_csr"}
    for name, value in vars(a).items():
        if name == "_tag_csr":
            continue
        other = vars(b)[name]
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and np.array_equal(value, other), name
        elif name != "_rng":
            assert value == other, name


def test_a_checkpoint_holds_the_item_rows_only_and_restores_the_model_exactly() -> None:
    model = NextItemSoftmax(n_factors=8, seed=3, full_softmax_items=0, n_negatives=5)
    rng = random.Random(2)
    users = [UserState(f"u{n}") for n in range(30)]
    for step in range(900):  # 300 items: the item arrays have 512 rows, 212 spare
        user, item = rng.choice(users), f"i{step % 300}"
        model.learn_one(user, item, ts=float(step))
        user.observe(item, ts=float(step))
    assert len(model._b) == 512 and len(model) == 300
    blob = pickle.dumps(model)
    with_spare = pickle.dumps(vars(model))  # what a checkpoint held before
    rows = ("_E", "_W", "_b", "_gE", "_gW", "_gb", "_alive")  # an array row per item
    spare = sum(vars(model)[name][300:].nbytes for name in rows)
    assert len(with_spare) - len(blob) >= 0.9 * spare > 0
    copy = pickle.loads(blob)
    _same_state(copy, model)
    for m in (model, copy):  # and both go on alike, through the spare rows
        for step in range(900, 1400):
            user, item = users[step % 30], f"i{step % 400}"
            m.learn_one(user, item, ts=float(step))
    _same_state(copy, model)
    user = history("i5", "i320")
    assert [(c.item_id, c.score) for c in copy.recommend(user, k=5)] == [
        (c.item_id, c.score) for c in model.recommend(user, k=5)
    ]


def test_a_checkpoint_with_the_spare_rows_still_restores() -> None:
    model = NextItemSoftmax(n_factors=4, seed=0)
    train_walks(model, users=20)
    state = {k: v for k, v in vars(model).items() if k != "_tag_csr"}  # an older checkpoint
    old = NextItemSoftmax.__new__(NextItemSoftmax)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    _same_state(old, model)


def test_a_steps_sums_per_row_add_up_each_rows_occurrences_in_order() -> None:
    """The minibatch step sums each parameter row's gradients over its occurrences (targets,
    shared negatives, context items): the same sums as adding them one by one, to the bit."""
    from models.sequence_batch import _summed

    rng = np.random.default_rng(3)
    rows = np.concatenate([rng.integers(0, 50, 300), rng.integers(0, 5, 100)])  # many repeats
    grads = rng.standard_normal((len(rows), 8)).astype(np.float32)
    biases = rng.standard_normal(len(rows)).astype(np.float32)
    distinct, summed, summed_b = _summed(rows, grads, biases)
    assert distinct.tolist() == sorted(set(rows.tolist()))
    for r, total, total_b in zip(distinct, summed, summed_b, strict=True):
        expected = np.zeros(8, dtype=np.float32)
        expected_b = np.float32(0.0)
        for at in np.flatnonzero(rows == r):
            expected += grads[at]
            expected_b += biases[at]
        assert total.tolist() == expected.tolist() and total_b == expected_b
    assert [len(a) for a in _summed(rows[:0], grads[:0])] == [0, 0]


def test_a_minibatch_step_moves_each_context_item_as_its_own_event_alone_would() -> None:
    """Gradients are taken at the step's start, so the factors of a context item that only
    one event of the step has move as learning that event alone moves them: weighted by
    its place in the context, summed over its occurrences."""
    model = NextItemSoftmax(n_factors=8, full_softmax_items=100, max_batch=8, seed=1)
    train_walks(model, users=60)
    first, second = history("i0", "i1", "i2", "i1"), history("i5", "i6")
    first.user_id, second.user_id = "a", "b"
    batched, alone = pickle.loads(pickle.dumps(model)), pickle.loads(pickle.dumps(model))
    events = [Event("a", "i3", ts=1.0), Event("b", "i7", ts=1.0)]
    assert batched.learn_many([first, second], events) == {}
    alone.learn_one(first, "i3", ts=1.0)
    for item in ("i0", "i1", "i2"):
        row = model._row[item]
        assert not np.allclose(alone._E[row], model._E[row])  # it moved
        np.testing.assert_allclose(batched._E[row], alone._E[row], rtol=1e-5, atol=1e-7)
