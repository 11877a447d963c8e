"""Unit tests of the session models (TransitionModel, SessionKNN) on seeded synthetic streams."""

from __future__ import annotations

import pickle
import random

import pytest

from models.base import UserState
from models.events import Event, apply_event
from models.sknn import SessionKNN
from models.transitions import TransitionModel

MODELS = [TransitionModel, SessionKNN]


def replay(model, sessions, *, ts0: float = 0.0, weight: float = 1.0) -> dict[str, UserState]:
    """Feed ``(user_id, session_id, items)`` triples through the worker's one event path
    (``weight`` other than 1 feeds that raw weight to ``learn_one`` in the same order)."""
    users: dict[str, UserState] = {}
    ts = ts0
    for user_id, session_id, items in sessions:
        user = users.setdefault(user_id, UserState(user_id))
        for item in items:
            ts += 1.0
            if weight == 1.0:
                apply_event(model, user, Event(user_id, item, ts, session_id=session_id))
                continue
            user.start_session_if_new(session_id, ts)
            model.learn_one(user, item, ts=ts, weight=weight)
            user.record(item, ts)
    return users


def random_sessions(seed: int, n: int, n_items: int = 200) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(seed)
    return [
        (f"u{rng.randrange(50)}", f"s{s}", [f"i{rng.randrange(n_items)}" for _ in range(6)])
        for s in range(n)
    ]


def session_user(*items: str) -> UserState:
    user = UserState("me")
    for item in items:
        user.observe(item, ts=1e6, session_id="mine")
    return user


@pytest.mark.parametrize("cls", MODELS)
def test_a_then_b_is_learned(cls) -> None:
    model = cls()
    noise = random_sessions(0, 30)
    planted = [(f"p{n}", "s", ["A", "B"]) for n in range(10)]
    replay(model, noise + planted)
    recs = model.recommend(session_user("A"), k=3, exclude={"A"})
    assert recs[0].item_id == "B"
    assert recs[0].because == ["A"]
    assert recs[0].sources == [cls.name]
    assert all(c.score > 0 for c in recs)


def test_transitions_follow_the_last_item() -> None:
    model = TransitionModel(skip_weight=0.0)
    replay(model, [(f"u{n}", "s", ["A", "B", "C"]) for n in range(5)])
    assert [c.item_id for c in model.recommend(session_user("A", "B"), k=1)] == ["C"]
    assert [item for item, _ in model.next_items("A")] == ["B"]
    assert model.next_items("A")[0][1] == pytest.approx(1.0)


def test_transition_skip_order() -> None:
    model = TransitionModel(skip_weight=0.5)
    replay(model, [(f"u{n}", "s", ["A", "B", "C"]) for n in range(5)])
    assert [item for item, _ in model.next_items("A", k=2)] == ["B", "C"]


def test_transition_decay_prefers_recent() -> None:
    model = TransitionModel(half_life=10.0, skip_weight=0.0)
    replay(model, [(f"old{n}", "s", ["A", "B"]) for n in range(20)])
    replay(model, [(f"new{n}", "s", ["A", "C"]) for n in range(5)], ts0=1000.0)
    assert model.recommend(session_user("A"), k=1)[0].item_id == "C"
    events = TransitionModel(half_life=3.0, clock="events", skip_weight=0.0)
    replay(events, [(f"old{n}", "s", ["A", "B"]) for n in range(20)])
    replay(events, [(f"new{n}", "s", ["A", "C"]) for n in range(5)])
    assert events.recommend(session_user("A"), k=1)[0].item_id == "C"


@pytest.mark.parametrize("cls", MODELS)
def test_exclusion_is_honoured(cls) -> None:
    model = cls()
    replay(model, random_sessions(1, 300, n_items=30))
    user = session_user("i1", "i2")
    full = [c.item_id for c in model.recommend(user, k=10)]
    assert full
    banned = set(full[:3])
    recs = model.recommend(user, k=10, exclude=banned)
    assert not banned & {c.item_id for c in recs}
    assert len(recs) <= 10


def test_transition_neighbour_cap() -> None:
    model = TransitionModel(max_next=5)
    replay(model, random_sessions(2, 2000, n_items=100))
    assert max(len(row) for row in model._next.values()) <= 10


def test_sknn_memory_is_bounded() -> None:
    model = SessionKNN(max_sessions=50, max_session_len=4)
    replay(model, random_sessions(3, 2000))
    assert len(model) <= 50
    assert all(len(items) <= 4 for items in model._sessions.values())
    postings = sum(len(p) for p in model._postings.values())
    assert postings == sum(len(items) for items in model._sessions.values())
    assert len(model._sid) == len(model._keys) <= 50


@pytest.mark.parametrize("cls", MODELS)
def test_pickle_round_trip(cls) -> None:
    model = cls()
    replay(model, random_sessions(4, 300, n_items=50))
    clone = pickle.loads(pickle.dumps(model))
    user = session_user("i3", "i7")
    assert clone.recommend(user, k=10) == model.recommend(user, k=10)
    assert clone.recommend(user, k=10)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -1.0, 0.0])
def test_bad_weights_do_not_poison(cls, bad: float) -> None:
    clean, dirty = cls(), cls()
    stream = random_sessions(5, 200, n_items=40)
    replay(clean, stream)
    replay(dirty, stream)
    replay(dirty, [("x", "sx", ["i1", "i2", "i3"])], weight=bad)
    user = session_user("i1")
    assert dirty.recommend(user, k=10) == clean.recommend(user, k=10)


def test_huge_weight_is_clipped() -> None:
    model = TransitionModel()
    replay(model, [(f"u{n}", "s", ["A", "B"]) for n in range(3)])
    replay(model, [("x", "s", ["A", "C"])], weight=1e300)
    recs = model.recommend(session_user("A"), k=2)
    assert all(0 < c.score < 2 for c in recs)


@pytest.mark.parametrize("cls", MODELS)
def test_cold_model_and_empty_user(cls) -> None:
    model = cls()
    assert model.recommend(UserState("nobody"), k=5) == []
    replay(model, random_sessions(6, 20))
    assert model.recommend(UserState("nobody"), k=5) == []


@pytest.mark.parametrize("cls", MODELS)
def test_forget_item(cls) -> None:
    model = cls()
    replay(model, [(f"p{n}", "s", ["A", "B", "C"]) for n in range(5)])
    model.forget_item("B")
    assert "B" not in {c.item_id for c in model.recommend(session_user("A"), k=5)}


def test_session_knn_keeps_every_item_of_finished_sessions_in_the_worker_order() -> None:
    """Regression: the session-end repair, written for learn-before-session-start, dropped the
    last item of every finished session on the worker's path (ab|cd|ef stored as a|c|ef)."""
    knn = SessionKNN()
    replay(knn, [("u", "s1", ["a", "b"]), ("u", "s2", ["c", "d"]), ("u", "s3", ["e", "f"])])
    stored = sorted("".join(items) for items in knn._sessions.values())
    assert stored == ["ab", "cd", "ef"]
    for first, second in ("ab", "cd"):
        recs = knn.recommend(session_user(first), k=5, exclude={first})
        assert [c.item_id for c in recs] == [second]


def test_top_by_name_is_the_per_owner_top_with_ties_by_name() -> None:
    """The batched rankings' cut (names ranked only where scores tie) against the plain one."""
    import numpy as np

    from models.ranking import Vocab, name_rank, top_per_owner
    from models.transitions import top_by_name

    rng = np.random.default_rng(5)
    vocab = Vocab()
    vocab.intern([f"i{n}" for n in rng.permutation(300)])  # ids not in name order
    for _ in range(50):
        size = int(rng.integers(1, 400))
        owner = np.sort(rng.integers(0, 12, size))
        keys = np.unique((owner << 32) | rng.integers(0, 300, size))  # one entry per item
        owner, items = keys >> 32, keys & 0xFFFFFFFF
        scores = rng.integers(1, 6, len(keys)) / 4.0  # many ties
        for k in (1, 3, 50):
            want = top_per_owner(owner, scores, k, name_rank(vocab, items))
            assert top_by_name(owner, items, scores, k, vocab).tolist() == want.tolist()


def test_sknn_neighbour_cut_is_the_per_owner_top_with_ties_to_the_newer_session() -> None:
    import numpy as np

    from models.ranking import top_per_owner
    from models.sknn import _top_neighbors

    rng = np.random.default_rng(8)
    for base in (0, 1 << 16):  # owners that fit a radix sort's 16 bits, and owners that do not
        for _ in range(30):
            size = int(rng.integers(1, 600))
            keys = np.unique(((base + rng.integers(0, 9, size)) << 32) | rng.integers(0, 99, size))
            owner, sid = keys >> 32, keys & 0xFFFFFFFF  # sorted by owner, then session
            sims = rng.integers(1, 5, len(keys)) / 3.0  # many ties
            for k in (1, 7, 100):
                want = top_per_owner(owner, sims, k, -sid)
                assert _top_neighbors(owner, sims, sid, k).tolist() == want.tolist()


def test_a_batch_allows_the_same_entries_over_a_small_and_a_large_vocabulary() -> None:
    import numpy as np

    from models.ranking import RankBatch, Vocab

    rng = np.random.default_rng(2)
    vocab = Vocab()
    users = [UserState(f"u{b}") for b in range(20)]
    excludes = [{f"i{x}" for x in rng.integers(0, 60, int(rng.integers(0, 15)))} for _ in users]
    batch = RankBatch(users, excludes, vocab)
    owner = np.sort(rng.integers(0, len(users), 500))
    items = vocab.intern([f"i{x}" for x in rng.integers(0, 80, 500)])
    pairs0 = zip(owner.tolist(), items.tolist(), strict=True)
    by_keys = np.array([vocab.names[i] not in excludes[b] for b, i in pairs0])
    assert batch.allowed(owner, items).tolist() == by_keys.tolist()
    assert not by_keys.all()
    part = batch.subset([3, 7])
    mine = np.array([0, 0, 1, 1])
    pairs = zip([3, 3, 7, 7], items[:4].tolist(), strict=True)
    want = [vocab.names[i] not in excludes[b] for b, i in pairs]
    assert part.allowed(mine, items[:4]).tolist() == want
    # a large catalogue (20 users x 120,080 ids: past the user x id table) gives the same
    vocab.intern([f"big{x}" for x in range(120_000)])
    more = vocab.intern([f"big{x}" for x in rng.integers(0, 120_000, 200)])
    owner2 = np.concatenate([owner, np.sort(rng.integers(0, len(users), 200))])
    items2 = np.concatenate([items, more])
    pairs2 = zip(owner2.tolist(), items2.tolist(), strict=True)
    want2 = [vocab.names[i] not in excludes[b] for b, i in pairs2]
    assert len(batch) * len(vocab) > 1 << 21
    assert batch.allowed(owner2, items2).tolist() == want2
    assert part.allowed(mine, items[:4]).tolist() == want
