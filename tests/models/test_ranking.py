"""The pieces of the batched ranking (:mod:`models.ranking`): top-k per user, the vocabulary,
exclusions, and the blend's order of sources, ties and reasons.

That every source's ``propose`` agrees with its ``recommend`` and that the hybrid's batched
ranking agrees with the per-user blend is checked on every model in ``test_contract.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.base import Candidate, Recommender, UserState
from models.content import ContentModel
from models.hybrid import HybridRecommender, Phase, SwitchingPolicy
from models.implicit_mf import ImplicitMF
from models.ranking import (
    RankBatch,
    Vocab,
    decayed,
    distinct,
    name_rank,
    runs_of,
    sum_per_owner,
    top_dense,
    top_of_sums,
    top_per_owner,
    top_per_owner_by_cand,
    top_per_owner_by_name,
)
from models.sequence import NextItemSoftmax


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


@pytest.mark.parametrize("seed", range(5))
def test_distinct_is_numpys_unique_of_any_integers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for size in (0, 1, 2, 7, 500, 20_000):
        values = rng.integers(-50, 1 + size // 3, size)
        got = distinct(values)
        assert got.tolist() == np.unique(values).tolist()
        assert got.dtype == values.dtype


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


def tied_entries(
    rng: np.random.Generator, n_items: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, item) entries of 8 users grouped in increasing order, with scores of four
    values (many ties at any place)."""
    owner = np.sort(rng.integers(0, 8, size=size))
    items = rng.integers(0, n_items, size=size)
    keys = np.unique((owner << 32) | items)
    owner, items = keys >> 32, keys & ((1 << 32) - 1)
    return owner, items, rng.integers(0, 4, size=len(keys)) / 4.0


@pytest.mark.parametrize("seed", range(20))
def test_the_blends_cut_before_names_keeps_every_tie_at_the_kth_place(seed: int) -> None:
    """Ranking names only for what scores at least each user's k-th best gives the lists of
    ranking every entry by score and name (many equal scores, names out of id order)."""
    rng = np.random.default_rng(seed)
    vocab = Vocab()
    names = [f"i{n}" for n in rng.permutation(60)]
    vocab.intern(names)
    owner, items, scores = tied_entries(rng, 60, 300)
    for k in (1, 3, 10, 100):
        want = top_per_owner(owner, scores, k, name_rank(vocab, items))
        assert top_per_owner_by_name(owner, items, scores, k, vocab).tolist() == want.tolist()


@pytest.mark.parametrize("seed", range(20))
def test_the_cut_by_candidate_keeps_every_tie_at_the_kth_place_and_breaks_it_by_candidate(
    seed: int,
) -> None:
    """Item CF's top ``n`` per user (ties to the lower candidate) is the one of sorting every
    entry by score and candidate, however many tie at the ``n``-th place."""
    rng = np.random.default_rng(seed)
    owner, cand, scores = tied_entries(rng, 80, 400)
    for n in (1, 3, 10, 100):
        want = top_per_owner(owner, scores, n, cand)
        assert top_per_owner_by_cand(owner, cand, scores, n).tolist() == want.tolist()


def test_sums_per_user_and_candidate_agree_on_the_dense_and_the_sorted_path() -> None:
    """A catalogue small against the entries is summed through a dense grid, a large one by
    sorting: the same pairs, sums (in entry order) and each entry's pair either way."""
    rng = np.random.default_rng(3)
    owner = np.sort(rng.integers(0, 50, size=20_000))
    cand = rng.integers(0, 900, size=20_000)
    values = rng.random(20_000)
    dense = sum_per_owner(owner, cand, values, 50, 900)  # 45,000 cells: dense
    by_sort = sum_per_owner(owner, cand, values, 50, 1 << 20)  # 52 M cells: sorted
    for a, b in zip(dense, by_sort, strict=True):
        assert a.tolist() == b.tolist()
    o, c, sums, at = dense
    assert np.allclose(np.bincount(at, weights=values), sums)
    assert (o[at] == owner).all() and (c[at] == cand).all()


@pytest.mark.parametrize("bad", [None, np.inf, np.nan])
@pytest.mark.parametrize("seed", range(4))
def test_the_best_sums_per_user_agree_on_the_dense_grid_and_the_distinct_pairs(
    seed: int, bad: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The top n summed candidates per user, through a dense grid of users x candidates or
    through the distinct pairs: the same pairs and sums in the same order (ties, excluded
    pairs, sums not finite or not positive included), and the same entries behind each."""
    from models import ranking

    rng = np.random.default_rng(seed)
    owner = np.sort(rng.integers(0, 30, size=6_000))
    cand = rng.integers(0, 400, size=6_000)
    values = rng.choice([0.5, 1.0, 2.0, -1.0], size=6_000)  # many equal sums
    if bad is not None:
        values[rng.integers(0, 6_000, size=3)] = bad
    excluded = (np.sort(rng.integers(0, 30, size=500)), rng.integers(0, 400, size=500))
    dense = top_of_sums(owner, cand, values, 30, 400, 7, excluded)
    monkeypatch.setattr(ranking, "_dense_fits", lambda cells, entries: False)
    pairs = top_of_sums(owner, cand, values, 30, 400, 7, excluded)
    for a, b in zip(dense[:3], pairs[:3], strict=True):
        assert a.tolist() == b.tolist()
    assert len(dense[0]) > 100 and (dense[2] > 0).all() and np.isfinite(dense[2]).all()
    for path in (dense, pairs):
        entries = [np.flatnonzero(path[3] == k) for k in path[4]]
        assert [
            (owner[e] == o).all() and (cand[e] == c).all()
            for e, o, c in zip(entries, path[0], path[1], strict=True)
        ] == [True] * len(path[0])
        assert np.allclose([values[e].sum() for e in entries], path[2])
    if bad is None:  # a grid it was (keys are its cells): only when every value is finite
        assert dense[3].tolist() == (owner * 400 + cand).tolist()


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_the_dense_grid_summed_a_block_of_users_at_a_time_gives_the_whole_grids_pairs(
    seed: int, grouped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of a few users' rows (a block size that does not divide the users, excluded
    pairs in every block) give the very pairs, sums and keys of one grid of all users."""
    from models import ranking

    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 37, size=5_000)
    owner = np.sort(owner) if grouped else owner
    cand = rng.integers(0, 300, size=5_000)
    values = rng.choice([0.5, 1.0, 2.0, -1.0], size=5_000)
    excluded = (rng.integers(0, 37, size=400), rng.integers(0, 300, size=400))
    whole = top_of_sums(owner, cand, values, 37, 300, 9, excluded)
    monkeypatch.setattr(ranking, "_GRID_BLOCK", 5 * 300)  # blocks of 5 users
    blocks = top_of_sums(owner, cand, values, 37, 300, 9, excluded)
    assert len(whole[0]) > 200
    for a, b in zip(whole, blocks, strict=True):
        assert a.dtype == b.dtype and a.tolist() == b.tolist()


@pytest.mark.parametrize("zeros", [0.0, 0.8])  # mostly zeros: partitioned the other way
@pytest.mark.parametrize("seed", range(5))
def test_top_dense_orders_each_row_and_breaks_ties_by_column_also_at_the_cut(
    seed: int, zeros: float
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(1, 5, size=(20, 30)).astype(float)
    scores[rng.random((20, 30)) < zeros] = 0.0
    scores[0] = -np.inf
    for n in (1, 7, 29):
        top = top_dense(scores, n)
        for row, cols in zip(scores, top, strict=True):
            assert cols.tolist() == sorted(range(30), key=lambda c: (-row[c], c))[:n]
    assert top_dense(scores, 100).shape == (20, 30)
    scores[1, ::3] = np.nan  # below everything, as in a sort of -scores
    top = top_dense(scores, 20)
    assert not np.isnan(scores[1, top[1]]).any()
    assert np.isnan(scores[1, top_dense(scores, 30)[1, 20:]]).all()


@pytest.mark.parametrize("levels", [4, 50, 0])  # 0: continuous scores
@pytest.mark.parametrize("seed", range(4))
def test_top_dense_of_a_wide_array_is_each_rows_best_with_ties_by_column(
    seed: int, levels: int
) -> None:
    """Wide rows (8 n columns or more) are cut at a threshold from a sample of their columns
    first: the same columns, in the same order, as a sort of each whole row, for rows where
    the threshold keeps too few or too many (ties, -inf, zeros) as for the others."""
    rng = np.random.default_rng(seed)
    rows, cols = 40, 600
    if levels:
        scores = rng.integers(0, levels, size=(rows, cols)).astype(float)
    else:
        scores = rng.standard_normal((rows, 8)) @ rng.standard_normal((8, cols))
    scores[1] = -np.inf
    scores[2, : cols // 2] = -np.inf
    scores[3] = 0.0
    scores[4, ::7] = np.inf
    scores[5, rng.random(cols) < 0.9] = 0.0
    for n in (1, 5, 20, 75):
        top = top_dense(scores, n)
        for row, cols_ in zip(scores, top, strict=True):
            assert cols_.tolist() == sorted(range(cols), key=lambda c: (-row[c], c))[:n]


def test_the_vocabulary_maps_a_source_rows_as_they_grow_and_after_a_renumbering() -> None:
    vocab = Vocab()
    rows = ["a", "b"]
    assert vocab.rows(rows).tolist() == [0, 1]
    rows.append("c")
    assert vocab.rows(rows).tolist() == [0, 1, 2]
    renumbered = ["c", "a"]
    assert vocab.rows(renumbered).tolist() == [2, 0]
    assert vocab.row_of(renumbered).tolist() == [1, -1, 0]


@pytest.mark.parametrize("seed", range(5))
def test_the_vocabularys_name_order_stays_the_sort_by_name_as_it_grows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = Vocab()
    for _ in range(6):  # names arriving in batches, some again, interleaving the earlier ones
        vocab.intern([f"i{x}" for x in rng.integers(0, 300, int(rng.integers(1, 60)))])
        place = vocab.name_order()
        by_name = sorted(range(len(vocab)), key=vocab.names.__getitem__)
        assert place[by_name].tolist() == list(range(len(vocab)))
        items = rng.integers(0, len(vocab), 40)
        keys = name_rank(vocab, items)
        assert [vocab.names[i] for i in items[np.argsort(keys, kind="stable")]] == sorted(
            vocab.names[i] for i in items
        )


def test_row_of_kept_up_as_rows_and_the_vocabulary_grow_is_the_map_built_afresh() -> None:
    rng = np.random.default_rng(5)
    vocab = Vocab()
    lists: list[list[str | None]] = [[], []]
    handed: list[tuple[np.ndarray, np.ndarray]] = []
    for step in range(300):
        rows = lists[step % 2]
        for _ in range(int(rng.integers(0, 4))):
            rows.append(f"i{int(rng.integers(0, 60))}")  # an item may get a second row
        if rows and rng.random() < 0.2:
            rows[int(rng.integers(0, len(rows)))] = None  # a dead row
        vocab.intern([f"v{int(rng.integers(0, 80))}"])  # ids others brought
        got = vocab.row_of(rows)
        ids = vocab.rows(rows)
        want = np.full(len(vocab), -1, dtype=np.int64)
        for r, i in enumerate(ids.tolist()):
            if i >= 0:
                want[i] = r
        assert got.tolist() == want.tolist(), step
        handed.append((got, got.copy()))
    for array, as_handed in handed:  # extending never changed an array handed out before
        assert array.tolist() == as_handed.tolist()


def test_a_batch_excludes_per_user() -> None:
    vocab = Vocab()
    batch = RankBatch([UserState("u"), UserState("v")], [{"x", "y"}, {"y"}], vocab)
    owner = np.array([0, 0, 1, 1])
    items = vocab.intern(["x", "z", "x", "y"])
    assert batch.allowed(owner, items).tolist() == [False, True, True, False]
    assert batch.subset([1]).allowed(np.array([0]), vocab.intern(["y"])).tolist() == [False]


@pytest.mark.parametrize("seed", range(5))
def test_a_batchs_recent_items_are_each_users_latest_first_also_in_any_part_of_it(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    users = [
        UserState(f"u{u}", recent=[f"i{x}" for x in rng.permutation(30)[: rng.integers(0, 12)]])
        for u in range(8)
    ]
    vocab = Vocab()
    batch = RankBatch(users, [()] * len(users), vocab)
    part = sorted(rng.choice(len(users), size=5, replace=False).tolist())
    for sub, members in ((batch, list(range(len(users)))), (batch.subset(part), part)):
        for depth in (1, 5, 20):
            owner, ids, back = sub.recent(depth)
            expected = [
                (b, item, p)
                for b, member in enumerate(members)
                for p, item in enumerate(reversed(users[member].recent[-depth:]))
            ]
            names = [vocab.names[i] for i in ids]
            got = list(zip(owner.tolist(), names, back.tolist(), strict=True))
            assert got == expected


@pytest.mark.parametrize("seed", range(5))
def test_runs_of_grouped_owners_place_each_entry_in_its_owners_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    owner = np.sort(rng.integers(0, 30, size=int(rng.integers(1, 200))))
    users, row, place = runs_of(owner)
    assert users.tolist() == sorted(set(owner.tolist()))
    assert (users[row] == owner).all()
    seen: dict[int, int] = {}
    for o, p in zip(owner.tolist(), place.tolist(), strict=True):
        assert p == seen.get(o, 0)  # 0, 1, 2, ... along each owner's run
        seen[o] = p + 1


def test_decayed_weights_are_the_loops_repeated_products_to_the_bit() -> None:
    for decay in (0.8, 0.5, 0.95, 1 / 3):
        w, expected = 1.0, []
        for _ in range(30):
            expected.append(w)
            w *= decay
        assert decayed(decay, 30).tolist() == expected


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
    assert lists[0][1].score == 0.5 + 0.5 and lists[0][1].because == ["a-why"]  # a leads
    assert [(c.item_id, c.sources) for c in lists[1]][:2] == [("y", ["b", "a"]), ("z", ["b"])]
    assert lists[1][0].because == ["b-why"]  # b leads this user's phase
    assert [(c.item_id, c.score, c.sources) for c in lists[2]] == [
        ("x", 1.0, ["a"]),
        ("z", 0.5, ["b"]),  # b's best for this user once y is excluded
        ("p", 0.0, ["pop"]),  # filled: a and b have nothing else for this user
    ]
    assert hybrid.recommend_batch([], k=5) == []
    assert hybrid.recommend_batch([new], k=0) == [[]]


@pytest.mark.parametrize("cls", [ImplicitMF, NextItemSoftmax])
def test_a_factor_model_over_a_large_catalogue_scores_its_head_and_the_pool(cls) -> None:
    # 60 items, retrieval_items 8: a batch's lists rank only the model's 8 head items (largest
    # biases, or most frequent recent targets) and the user's own pool (what the other sources
    # proposed to that user, not to the others in the batch): each list is the
    # whole-catalogue ranking restricted to those items
    model = cls(n_factors=8, seed=1, retrieval_items=8)
    users = {u: UserState(u) for u in ("a", "b", "c")}
    for t in range(300):
        user = users["abc"[t % 3]]
        item = f"i{(t * 7) % 60 if t % 4 else t % 5}"  # a few items far more often
        model.learn_one(user, item, ts=float(t))
        user.observe(item, ts=float(t))
    if cls is ImplicitMF:
        live = np.flatnonzero(model._alive[:60])
        head = live[np.argsort(-model._b[live], kind="stable")[:8]]
    else:
        counts = np.bincount(model._recent[: model._recent_n], minlength=60)
        head = np.argsort(-counts, kind="stable")[:8]
    pools = [{"i5", "i17", "i44"}, {"i17", "i31"}, set()]  # to a, to b, to c
    heads = {model._row_items[r] if cls is ImplicitMF else model._items[r] for r in head}
    vocab = Vocab()
    everyone = list(users.values())
    batch = RankBatch(everyone, [set() for _ in everyone], vocab)
    owner = [b for b, pool in enumerate(pools) for _ in pool]
    batch.set_pool(np.array(owner), vocab.intern([x for pool in pools for x in sorted(pool)]))
    cut = model.propose(batch, 5)
    model.retrieval_items = 1000  # the whole catalogue: the reference
    whole = model.propose(RankBatch(everyone, [set() for _ in everyone], vocab), 60)
    for b in range(3):
        got = [vocab.names[i] for i in cut.items[cut.owner == b].tolist()]
        ranked = [vocab.names[i] for i in whole.items[whole.owner == b].tolist()]
        assert got and got == [x for x in ranked if x in heads | pools[b]][:5]


def test_the_hybrid_asks_factor_models_after_the_others_with_their_pool() -> None:
    seen: dict[str, object] = {}

    class Bulk(Fixed):
        bulk = True

        def propose(self, batch, n):
            seen["pool"] = sorted(batch.vocab.names[i] for i in batch.pool.tolist())
            return super().propose(batch, n)

    policy = SwitchingPolicy([Phase("all", 0, {"f": 1.0, "a": 1.0})])
    sources = {"f": Bulk("f", {"z": 1.0}), "a": Fixed("a", {"x": 2.0, "y": 1.0})}
    hybrid = HybridRecommender(sources, policy, fallback=None)
    assert [c.item_id for c in hybrid.recommend(UserState("u"), k=3)] == ["x", "z", "y"]
    assert seen["pool"] == ["x", "y"]


def test_content_over_a_large_catalogue_in_a_hybrid_re_ranks_the_pool() -> None:
    model = ContentModel(retrieval_items=5)
    for n in range(30):
        model.upsert_item(f"i{n}", title=f"story {n}", tags=[f"g{n % 3}", f"h{n % 5}"])
    user = UserState("u")
    for item in ("i0", "i3", "i6"):
        model.learn_one(user, item, ts=0.0)
        user.observe(item, ts=0.0)
    vocab = Vocab()
    whole = model.propose(RankBatch([user], [user.seen], vocab), 30)
    ranked = [vocab.names[i] for i in whole.items.tolist()]
    other = UserState("v")  # in the same batch, proposed other items
    batch = RankBatch([user, other], [user.seen, set()], vocab)
    mine = ["i9", "i1", "i12", "i0"]  # i0 is seen: still excluded
    batch.set_pool(np.array([0, 0, 0, 0, 1, 1]), vocab.intern([*mine, "i2", "i4"]))
    cut = model.propose(batch, 10)
    assert [vocab.names[i] for i in cut.items[cut.owner == 0].tolist()] == [
        x for x in ranked if x in {"i9", "i1", "i12"}
    ]
    # the pool's pairs scored one by one: the whole catalogue's scores, to the bit
    scores = dict(zip(ranked, whole.scores.tolist(), strict=True))
    assert cut.scores[cut.owner == 0].tolist() == [
        scores[x] for x in ranked if x in {"i9", "i1", "i12"}
    ]
    batch = RankBatch([user], [user.seen], vocab)
    batch.set_pool(np.zeros(0, dtype=np.int64), vocab.intern([]))
    # alone (nothing else proposed): the whole catalogue
    assert model.propose(batch, 30).items.tolist() == whole.items.tolist()
