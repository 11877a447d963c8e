"""Content-based recommendations: item text and tags as sparse TF-IDF vectors, cosine to a profile.

Each catalogue item (``upsert_item``) becomes an L2-normalised sparse vector over words of its
title and text and over its tags (features ``"tag:<tag>"``, weighted ``tag_weight`` times a
word). IDF is online, like river's ``feature_extraction.TFIDF``: an item is weighted with the
document frequencies known when it is upserted. Vectors are stored in an inverted index
(feature -> compact arrays of item rows and weights), so the items nearest to a profile are
scored with numpy over the posting lists of the profile's top features, never item by item.

A user's content profile (``UserState.profile``) is the decayed sum of the vectors of the items
they touched, each scaled by the event's weight (a dislike subtracts), capped to its
``max_profile_features`` strongest features so it stays a small JSON-able dict.

>>> from models.base import UserState
>>> model = ContentModel()
>>> model.upsert_item("alien", title="Alien", tags=["sci-fi", "horror"])
>>> model.upsert_item("dune", title="Dune", tags=["sci-fi"])
>>> model.upsert_item("notting", title="Notting Hill", tags=["romance"])
>>> user = UserState("u1")
>>> model.learn_one(user, "alien", ts=0.0)
>>> [(c.item_id, c.because) for c in model.recommend(user, k=5, exclude={"alien"})]
[('dune', ['tag:sci-fi'])]
"""

from __future__ import annotations

import heapq
import math
import re
from array import array
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Candidate, Recommender, UserState
from models.common import add_row, ban, drop_row, grown, live_rows, top_rows
from models.ranking import (
    KEY_SHIFT,
    Proposals,
    RankBatch,
    candidate_rows,
    distinct,
    top_dense,
    top_per_owner_by_cand,
)

__all__ = ["STOPWORDS", "ContentModel", "tokenize"]

_STOPWORDS = (
    "a an and are as at be but by for from has have in is it its of on or that the this to was "
    "were will with not no so into than then there their they he she his her we you your our"
)
STOPWORDS = frozenset(_STOPWORDS.split())
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``, without stop words and one-letter tokens.

    >>> tokenize("The Empire Strikes Back (1980)")
    ['empire', 'strikes', 'back', '1980']
    """
    return [t for t in _TOKEN.findall(text.lower()) if len(t) > 1 and t not in STOPWORDS]


def _strength(feature: tuple[str, float]) -> float:
    return abs(feature[1])


def _tag_feature(tag: str) -> str:
    return "tag:" + "-".join(str(tag).lower().split())


class ContentModel(Recommender):
    """TF-IDF item vectors in an inverted index; user profiles as decayed sums of item vectors.

    Parameters:
        half_life: seconds (event time) after which a past interaction counts half in a profile.
        tag_weight: weight of one tag relative to one occurrence of a word.
        title_weight: weight of one title word relative to one word of the text.
        max_item_features: strongest features kept per item vector.
        max_profile_features: strongest features (by absolute weight) kept in a user profile.
        query_features: profile features (strongest first) used to find candidates.
        max_weight: events' weights are clipped to ``[-max_weight, max_weight]``.
        retrieval_items: ranking a batch of users in a hybrid (:meth:`propose`) scores the whole
            catalogue up to this many items; beyond, only what the other sources proposed.
    """

    name = "content"
    #: Scores its catalogue in bulk: in a hybrid it is asked after the other sources and, over
    #: a catalogue of more than ``retrieval_items``, re-ranks what they proposed.
    bulk = True
    #: What a model pickled before the cut existed uses.
    retrieval_items: int = 2000
    #: Catalogue changes so far (class-level: checkpoints from before it lack it); the batched
    #: ranking's index matrix is rebuilt when it moves.
    _version: int = 0

    def __init__(
        self,
        half_life: float = 30 * 24 * 3600.0,
        tag_weight: float = 3.0,
        title_weight: float = 2.0,
        max_item_features: int = 64,
        max_profile_features: int = 50,
        query_features: int = 20,
        max_weight: float = 10.0,
        retrieval_items: int = 2000,
    ) -> None:
        if half_life <= 0 or max_item_features < 1 or max_profile_features < 1:
            raise ValueError("half_life, max_item_features, max_profile_features must be > 0")
        if query_features < 1 or max_weight <= 0 or tag_weight <= 0 or title_weight <= 0:
            raise ValueError("query_features, max_weight and feature weights must be > 0")
        if retrieval_items < 1:
            raise ValueError("retrieval_items must be >= 1")
        self.half_life = half_life
        self.tag_weight = tag_weight
        self.title_weight = title_weight
        self.max_item_features = max_item_features
        self.max_profile_features = max_profile_features
        self.query_features = query_features
        self.max_weight = max_weight
        self.retrieval_items = retrieval_items
        self._vectors: dict[str, dict[str, float]] = {}  # item -> unit sparse vector
        self._df: dict[str, int] = {}  # live items per feature
        self._row: dict[str, int] = {}  # item -> current row in the index
        self._row_items: list[str | None] = []  # row -> item, None once dead
        self._alive = np.zeros(1024, dtype=bool)
        self._post_rows: dict[str, array] = {}  # feature -> rows (int32); may hold dead rows
        self._post_vals: dict[str, array] = {}  # feature -> weights (float32)
        self._dead = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_matrix", None)  # the batched ranking's index matrices, rebuilt on first use
        state.pop("_matrix_rows", None)
        return state

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._vectors

    # -- catalogue -------------------------------------------------------------------------

    def _vectorize(self, title: str, text: str, tags: Iterable[str]) -> dict[str, float]:
        tf: dict[str, float] = {}
        for tok in tokenize(title):
            tf[tok] = tf.get(tok, 0.0) + self.title_weight
        for tok in tokenize(text):
            tf[tok] = tf.get(tok, 0.0) + 1.0
        for tag in tags:
            if str(tag).strip():
                feat = _tag_feature(tag)
                tf[feat] = max(tf.get(feat, 0.0), self.tag_weight)
        n = len(self._vectors) + 1
        vec = {
            f: (1.0 + math.log(c)) * (math.log((1 + n) / (1 + self._df.get(f, 0) + 1)) + 1.0)
            for f, c in tf.items()
            if c >= 1.0
        }
        if len(vec) > self.max_item_features:
            vec = dict(heapq.nlargest(self.max_item_features, vec.items(), key=lambda kv: kv[1]))
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {f: v / norm for f, v in vec.items()} if norm > 0 else {}

    def upsert_item(
        self,
        item_id: str,
        *,
        title: str = "",
        text: str = "",
        tags: Collection[str] = (),
    ) -> None:
        """Add an item or replace its vector (IDF as of now)."""
        self.forget_item(item_id)
        vec = self._vectorize(title or "", text or "", tags or ())
        if not vec:
            return
        for f in vec:
            self._df[f] = self._df.get(f, 0) + 1
        self._vectors[item_id] = vec
        row = add_row(self._row, self._row_items, item_id)
        self._alive = grown(self._alive, row)
        self._alive[row] = True
        for f, w in vec.items():
            if f not in self._post_rows:
                self._post_rows[f] = array("i")
                self._post_vals[f] = array("f")
            self._post_rows[f].append(row)
            self._post_vals[f].append(w)
        self._version += 1

    def forget_item(self, item_id: str) -> None:
        """Remove an item from the catalogue; it is never recommended again."""
        vec = self._vectors.pop(item_id, None)
        if vec is None:
            return
        for f in vec:
            left = self._df.get(f, 0) - 1
            if left > 0:
                self._df[f] = left
            else:
                self._df.pop(f, None)
        drop_row(self._row, self._row_items, self._alive, item_id)
        self._dead += 1
        if self._dead > max(1024, len(self._vectors)):
            self._compact()

    def _compact(self) -> None:
        """Renumber live rows and rebuild posting lists without dead rows."""
        _, self._row_items, self._row = live_rows(self._row_items)
        self._alive = np.zeros(max(1024, 2 * len(self._row)), dtype=bool)
        self._alive[: len(self._row)] = True
        self._post_rows, self._post_vals = {}, {}
        for item in self._row:
            for f, w in self._vectors[item].items():
                self._post_rows.setdefault(f, array("i")).append(self._row[item])
                self._post_vals.setdefault(f, array("f")).append(w)
        self._dead = 0

    # -- profiles ----------------------------------------------------------------------------

    def learn_one(
        self,
        user: UserState,
        item_id: str,
        *,
        ts: float,
        weight: float = 1.0,
        value: float | None = None,
    ) -> None:
        vec = self._vectors.get(item_id)
        if vec is None or not math.isfinite(weight) or weight == 0 or not math.isfinite(ts):
            return
        weight = max(-self.max_weight, min(self.max_weight, weight))
        profile = user.profile
        if math.isfinite(sum(profile.values())):  # every value finite (the usual case): a copy
            profile = dict(profile)
        else:
            profile = {f: v for f, v in profile.items() if math.isfinite(v)}
        last = user.profile_ts
        if last is not None and math.isfinite(last) and ts < last:
            weight *= 2.0 ** (-(last - ts) / self.half_life)  # a late event counts less
        elif last is not None and math.isfinite(last) and ts > last:
            decay = 2.0 ** (-(ts - last) / self.half_life)
            profile = {f: v * decay for f, v in profile.items()}
        for f, w in vec.items():
            profile[f] = profile.get(f, 0.0) + weight * w
        # the strongest first (equals in the profile's order), then those above the floor
        ranked = sorted(profile.items(), key=_strength, reverse=True)
        top = abs(ranked[0][1]) if ranked else 0.0
        scale = 1e3 / top if top > 1e3 else 1.0  # cosine ignores scale; keep numbers small
        floor = 1e-9 * top
        user.profile = {
            f: float(v * scale) for f, v in ranked[: self.max_profile_features] if abs(v) > floor
        }
        user.profile_ts = ts if last is None or not math.isfinite(last) else max(last, ts)

    # -- retrieval ---------------------------------------------------------------------------

    def _scores(self, query: dict[str, float]) -> np.ndarray:
        n = len(self._row_items)
        scores = np.zeros(n, dtype=np.float64)
        strongest = heapq.nlargest(self.query_features, query.items(), key=lambda kv: abs(kv[1]))
        for f, q in strongest:
            rows = self._post_rows.get(f)
            if rows is not None and math.isfinite(q):
                idx = np.frombuffer(rows, dtype=np.int32)
                scores[idx] += q * np.frombuffer(self._post_vals[f], dtype=np.float32)
        norm = math.sqrt(sum(v * v for v in query.values() if math.isfinite(v)))
        scores /= norm if norm > 0 else 1.0
        scores[~self._alive[:n]] = 0.0
        return scores

    def _top(self, query: dict[str, float], k: int, exclude: Collection[str]) -> list[Candidate]:
        if k <= 0 or not query or not self._vectors:
            return []
        scores = self._scores(query)
        ban(scores, self._row, exclude, 0.0)
        out, strongest = [], self._strongest(query)
        for r in self._best(scores, k).tolist():
            item = self._row_items[r]
            if item is not None:
                out.append(
                    Candidate(item, float(scores[r]), [self.name], self._because(strongest, item))
                )
        return out

    def _best(self, scores: np.ndarray, k: int) -> np.ndarray:
        """Rows of the ``k`` best positive ``scores`` (equal scores by row)."""
        m = min(k, int(np.count_nonzero(scores > 0)))
        if m == 0:
            return np.zeros(0, dtype=np.int64)
        order = top_rows(scores, m)
        return order[scores[order] > 0]

    def _because(self, strongest: list[tuple[str, float]], item: str) -> list[str]:
        """The strongest query features (:meth:`_strongest`) the item shares (only those can
        score), up to 3."""
        vec = self._vectors[item]
        matched = [(q * vec[f], f) for f, q in strongest if f in vec and q * vec[f] > 0]
        matched.sort(key=lambda wf: (-wf[0], wf[1]))
        return [f for _, f in matched[:3]]

    def _strongest(self, query: dict[str, float]) -> list[tuple[str, float]]:
        """The query's features that :meth:`_because` names from, strongest first."""
        return heapq.nlargest(self.query_features, query.items(), key=lambda kv: kv[1])

    def _index_matrix(self) -> tuple[sp.csr_matrix, dict[str, int]]:
        """The inverted index as one sparse matrix (feature x row) and the features' places;
        kept until the catalogue changes (not pickled)."""
        cached = self.__dict__.get("_matrix")
        if cached is None or cached[2] is not self._post_rows or cached[3] != self._version:
            features = list(self._post_rows)
            sizes = [len(self._post_rows[f]) for f in features]
            indices = np.concatenate(
                [np.frombuffer(self._post_rows[f], dtype=np.int32) for f in features] or [[]]
            )
            data = np.concatenate(
                [np.frombuffer(self._post_vals[f], dtype=np.float32) for f in features] or [[]]
            )
            indptr = np.r_[0, np.cumsum(sizes)]
            matrix = sp.csr_matrix(
                (data.astype(np.float64), indices, indptr),
                shape=(len(features), len(self._row_items)),
            )
            cached = (
                matrix,
                {f: i for i, f in enumerate(features)},
                self._post_rows,
                self._version,
            )
            self.__dict__["_matrix"] = cached
        return cached[0], cached[1]

    def _rows_matrix(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The index matrix row by item (for picking rows), kept with it."""
        cached = self.__dict__.get("_matrix_rows")
        if cached is None or cached[0] is not matrix:
            cached = self.__dict__["_matrix_rows"] = (matrix, matrix.T.tocsr())
        return cached[1]

    def propose(self, batch: RankBatch, n: int) -> Proposals:
        """:meth:`recommend` for every user of ``batch`` at once: the users' strongest profile
        features times the index matrix (one sparse product per chunk of users); the reasons
        are worked out only for the entries that reach a list."""
        if n <= 0 or not self._vectors:
            return Proposals.empty()
        place = self._index_matrix()[1]
        users, q_rows, q_cols, q_vals, norms = [], [], [], [], []
        for b, user in enumerate(batch.users):
            if not user.profile:
                continue
            x = len(users)
            users.append(b)
            for f, q in heapq.nlargest(
                self.query_features, user.profile.items(), key=lambda kv: abs(kv[1])
            ):
                col = place.get(f)
                if col is not None and math.isfinite(q):
                    q_rows.append(x)
                    q_cols.append(col)
                    q_vals.append(q)
            norm = math.sqrt(sum(v * v for v in user.profile.values() if math.isfinite(v)))
            norms.append(norm if norm > 0 else 1.0)
        if not users:
            return Proposals.empty()
        size = len(self._row_items)
        ids = batch.vocab.rows(self._row_items)
        local = np.full(len(batch), -1, dtype=np.int64)
        local[users] = np.arange(len(users))
        row_of = batch.vocab.row_of(self._row_items)
        ex_owner, ex_rows = batch.excluded_rows(row_of)
        ex_at = local[ex_owner]
        # the rows scored: all of them, or (a large catalogue, in a hybrid) the pool of what
        # the other sources proposed: content re-ranks what they proposed to each user
        scored = None
        if batch.pool is not None and len(batch.pool):
            none = np.zeros(0, dtype=np.int64)
            scored = candidate_rows(batch, row_of, none, size, self.retrieval_items)
        if scored is not None and len(scored) < size:  # past the cut: each user's own pool
            at, picked_rows, picked = self._pool_scores(
                batch, local, row_of, ids, (q_rows, q_cols, q_vals), norms, n
            )
        else:
            at, picked_rows, picked = self._dense_scores(
                (q_rows, q_cols, q_vals), norms, ids, (ex_at, ex_rows), n
            )

        def explain(entries: np.ndarray) -> list[list[str]]:
            strongest: dict[int, list[tuple[str, float]]] = {}  # each user's, found once
            out = []
            for x, r in zip(at[entries].tolist(), picked_rows[entries].tolist(), strict=True):
                if x not in strongest:
                    strongest[x] = self._strongest(batch.users[users[x]].profile)
                out.append(self._because(strongest[x], str(self._row_items[r])))
            return out

        return Proposals(np.asarray(users, dtype=np.int64)[at], ids[picked_rows], picked, explain)

    def _dense_scores(
        self,
        query: tuple[list[int], list[int], list[float]],
        norms: list[float],
        ids: np.ndarray,
        excluded: tuple[np.ndarray, np.ndarray],
        n: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each user's ``n`` best rows of the whole catalogue: the users' queries (``query``:
        their places, the features' places, the weights) times the index matrix, one sparse
        product per chunk of users; returns the places, the rows and the scores (those > 0
        only, best first, equal scores by row)."""
        M = self._index_matrix()[0]
        q_rows, q_cols, q_vals = query
        Q = sp.csr_matrix((q_vals, (q_rows, q_cols)), shape=(len(norms), M.shape[0]))
        ex_at, ex_rows = excluded
        dead = ~self._alive[: M.shape[1]] | (ids < 0)
        owners, rows, scores = [], [], []
        step = max(1, 4_000_000 // max(M.shape[1], 1))
        for lo in range(0, Q.shape[0], step):
            hi = min(Q.shape[0], lo + step)
            S = (Q[lo:hi] @ M).toarray() / np.asarray(norms[lo:hi])[:, None]
            S[:, dead] = 0.0
            mine = (ex_at >= lo) & (ex_at < hi) & (ex_rows >= 0)
            S[ex_at[mine] - lo, ex_rows[mine]] = 0.0
            top = top_dense(S, n)
            picked = np.take_along_axis(S, top, axis=1)
            u, j = np.nonzero(picked > 0)
            owners.append(u + lo)
            rows.append(top[u, j])
            scores.append(picked[u, j])
        return np.concatenate(owners), np.concatenate(rows), np.concatenate(scores)

    def _pool_scores(
        self,
        batch: RankBatch,
        local: np.ndarray,
        row_of: np.ndarray,
        ids: np.ndarray,
        query: tuple[list[int], list[int], list[float]],
        norms: list[float],
        n: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_dense_scores` past the two-stage cut, where each user may be proposed only
        what the other sources proposed to that user: those pairs alone are scored (a batch's
        dense users x pool product was ~96 % cells no user could be proposed), each the sum of
        the user's query weights times the item's feature weights, over the item's features in
        order: the dense product's sums, to the bit."""
        owner, r = batch.pool_rows(row_of)
        ok = (local[owner] >= 0) & self._alive[r] & (ids[r] >= 0)
        ok[ok] = batch.allowed(owner[ok], ids[r[ok]])  # excluded items: never proposed
        pairs = distinct((local[owner[ok]] << KEY_SHIFT) | r[ok])
        u, r = pairs >> KEY_SHIFT, pairs & ((1 << KEY_SHIFT) - 1)
        # the pairs' items' features, item after item, and the user's weight for each
        rows = self._rows_matrix(self._index_matrix()[0])
        starts = rows.indptr[r]
        lens = rows.indptr[r + 1] - starts
        pair = np.repeat(np.arange(len(r)), lens)
        entry = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
        width = rows.shape[1]
        q_rows, q_cols, q_vals = (np.asarray(a) for a in query)
        q_key = q_rows.astype(np.int64) * width + q_cols
        order = np.argsort(q_key)
        q_key, q_vals = q_key[order], q_vals[order].astype(np.float64)
        key = u[pair] * width + rows.indices[entry]
        at = np.minimum(np.searchsorted(q_key, key), max(len(q_key) - 1, 0))
        hit = np.flatnonzero(q_key[at] == key) if len(q_key) else np.zeros(0, dtype=np.int64)
        sums = np.bincount(
            pair[hit], weights=q_vals[at[hit]] * rows.data[entry[hit]], minlength=len(r)
        )
        scores = sums / np.asarray(norms, dtype=np.float64)[u]
        keep = np.flatnonzero(scores > 0)
        top = keep[top_per_owner_by_cand(u[keep], r[keep], scores[keep], n)]
        return u[top], r[top], scores[top]

    def recommend(
        self, user: UserState, k: int = 10, exclude: Collection[str] = ()
    ) -> list[Candidate]:
        """Items most cosine-similar to the user's profile (positive scores only); ``because``
        names the strongest matching features, e.g. ``"tag:sci-fi"``."""
        return self._top(user.profile, k, exclude)

    def similar_items(self, item_id: str, k: int = 10) -> list[Candidate]:
        """The ``k`` catalogue items most cosine-similar to ``item_id`` (never itself)."""
        vec = self._vectors.get(item_id)
        return self._top(vec, k, (item_id,)) if vec else []
