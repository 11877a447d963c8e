"""The pieces of the batched ranking (:mod:`models.ranking`): top-k per user, the vocabulary,
exclusions, and the blend's order of sources, ties and reasons.

That every source's ``propose`` agrees with its ``recommend`` and that the hybrid's batched
ranking agrees with the per-user blend is checked on every model in ``test_contract.py``.
"""

from __future__ import annotations

import numpy as np

from models.base import Candidate, Recommender, UserState
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy
from models.ranking import RankBatch, Vocab, top_dense, top_per_owner


class Fixed(Recommender):
    """Proposes the same scored items to everyone, with a reason naming itself."""

    def __init__(self, name: str, scores: dict[str, float]) -> None:
        self.name = name
        self.scores = scores

    def learn_one(self, user, item_id, *, ts, weight=1.0, value=None) -> None:
        pass

    def recommend(self, user, k=10, exclude=()):
        ranked = sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [
            Candidate(i, s, [self.name], [f"{self.name}-why"])
            for i, s in ranked
            if i not in exclude
        ][:k]


def test_top_per_owner_keeps_n_per_owner_best_first_ties_by_key() -> None:
    owner = np.array([2, 0, 0, 0, 2, 0])
    scores = np.array([1.0, 2.0, 2.0, 5.0, 1.0, 0.5])
    tiebreak = np.array([7, 3, 1, 0, 4, 9])
    top = top_per_owner(owner, scores, 2, tiebreak)
    assert list(zip(owner[top].tolist(), tiebreak[top].tolist(), strict=True)) == [
        (0, 0),
        (0, 1),
        (2, 4),
        (2, 7),
    ]
    assert top_per_owner(owner, scores, 0).tolist() == []


def test_top_dense_orders_each_row_and_breaks_ties_by_column() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(20, 30)).astype(float)
    top = top_dense(scores, 7)
    for row, cols in zip(scores, top, strict=True):
        want = sorted(range(30), key=lambda c: (-row[c], c))[:7]
        assert [row[c] for c in cols] == [row[c] for c in want]
    assert top_dense(scores, 100).shape == (20, 30)


def test_the_vocabulary_maps_a_source_rows_as_they_grow_and_after_a_renumbering() -> None:
    vocab = Vocab()
    rows = ["a", "b"]
    assert vocab.rows(rows).tolist() == [0, 1]
    rows.append("c")
    assert vocab.rows(rows).tolist() == [0, 1, 2]
    renumbered = ["c", "a"]
    assert vocab.rows(renumbered).tolist() == [2, 0]
    assert vocab.row_of(renumbered).tolist() == [1, -1, 0]


def test_a_batch_excludes_per_user() -> None:
    vocab = Vocab()
    batch = RankBatch([UserState("u"), UserState("v")], [{"x", "y"}, {"y"}], vocab)
    owner = np.array([0, 0, 1, 1])
    items = vocab.intern(["x", "z", "x", "y"])
    assert batch.allowed(owner, items).tolist() == [False, True, True, False]
    assert batch.subset([1]).allowed(np.array([0]), vocab.intern(["y"])).tolist() == [False]


def test_the_blend_sums_in_the_users_phase_order_and_fills_from_the_fallback() -> None:
    policy = SwitchingPolicy(
        [Phase("one", 0, {"a": 1.0, "b": 0.5}), Phase("two", 1, {"b": 1.0, "a": 0.5})]
    )
    sources = {
        "a": Fixed("a", {"x": 4.0, "y": 2.0, "t1": 1.0, "t2": 1.0}),
        "b": Fixed("b", {"y": 1.0, "z": 0.5}),
        "pop": Fixed("pop", {"p": 9.0, "x": 8.0}),
    }
    hybrid = HybridRecommender(sources, policy, fallback="pop")
    new, old = UserState("new"), UserState("old", interactions=3)
    lists = hybrid.recommend_batch([new, old, new], k=5, excludes=[(), {"x"}, {"t1", "t2", "y"}])
    assert [(c.item_id, c.sources) for c in lists[0]] == [
        ("x", ["a"]),
        ("y", ["a", "b"]),
        ("t1", ["a"]),
        ("t2", ["a"]),  # t1 and t2 tie: by item id
        ("z", ["b"]),
    ]
    assert lists[0][1].score == 0.5 + 0.5 and lists[0][1].because == ["a-why", "b-why"]
    assert [(c.item_id, c.sources) for c in lists[1]][:2] == [("y", ["b", "a"]), ("z", ["b"])]
    assert [(c.item_id, c.score, c.sources) for c in lists[2]] == [
        ("x", 1.0, ["a"]),
        ("z", 0.5, ["b"]),  # b's best for this user once y is excluded
        ("p", 0.0, ["pop"]),  # filled: a and b have nothing else for this user
    ]
    assert hybrid.recommend_batch([], k=5) == []
    assert hybrid.recommend_batch([new], k=0) == [[]]
