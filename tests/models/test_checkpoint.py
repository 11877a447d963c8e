"""Checkpoints written before the sources moved modules still load (models.checkpoint).

``data/checkpoint_67e7b47.pkl.gz`` was written by the code of commit 67e7b47, before
``models.session``, ``models.mf`` and the cohort half of ``models.popularity`` were split into
one module per source, and before the hybrid had a configurable fallback: a small hybrid of
the six sources that moved or changed, after 300 events and one deleted item. The expected
figures below are what that code recommended from it.
"""

from __future__ import annotations

import gzip
import importlib
import pickle
import sys
import types
from pathlib import Path

import pytest

from models import registry
from models.base import Recommender, UserState
from models.checkpoint import MOVED, dump_checkpoint_bytes, load_checkpoint_bytes
from models.factory import default_hybrid
from models.hybrid import HybridRecommender

OLD = Path(__file__).parent / "data" / "checkpoint_67e7b47.pkl.gz"
#: What the old code recommended (item, score) from that checkpoint, k=5, seen items excluded.
EXPECTED = {
    "u0": [("i18", 0.267615561076), ("i4", 0.12431383811), ("i24", 0.088440250783)],
    "u1": [("i12", 0.234837623246), ("i9", 0.224213075929), ("i20", 0.194620873285)],
    "u11": [("i5", 1.1), ("i7", 0.713925888548), ("i8", 0.60534136647)],
}
EXPECTED_SOURCES = {  # each source's top 3 for u0, nothing excluded
    "popularity": ["i0", "i1", "i2"],
    "cohort": ["i0", "i1", "i2"],
    "session": ["i0", "i2", "i7"],
    "sknn": ["i5", "i7", "i2"],
    "mf": ["i0", "i1", "i2"],
    "rating": ["i2", "i4", "i10"],
}


def old_checkpoint() -> tuple[HybridRecommender, dict[str, UserState]]:
    saved = load_checkpoint_bytes(gzip.decompress(OLD.read_bytes()))
    return saved["engine"], {u: UserState.from_dict(d) for u, d in saved["users"].items()}


def test_plain_pickle_cannot_read_a_checkpoint_from_before_the_split() -> None:
    with pytest.raises((ModuleNotFoundError, AttributeError)):  # models.session, ... are gone
        pickle.loads(gzip.decompress(OLD.read_bytes()))


def test_a_checkpoint_from_before_the_split_serves_what_it_served() -> None:
    engine, users = old_checkpoint()
    for uid, expected in EXPECTED.items():
        recs = engine.recommend(users[uid], k=5, exclude=users[uid].seen)[: len(expected)]
        assert [c.item_id for c in recs] == [item for item, _ in expected]
        assert [c.score for c in recs] == pytest.approx([score for _, score in expected])
    for name, expected in EXPECTED_SOURCES.items():
        assert [c.item_id for c in engine.sources[name].recommend(users["u0"], k=3)] == expected
    assert "i3" in engine.deleted
    assert engine.fallback == "popularity"  # the class default: the old hybrid had no attribute
    assert engine.popularity("i0") == pytest.approx(13.671393901514957)
    assert engine.predict_rating("u0", "i1") == pytest.approx(3.2401828006690905)
    assert [item for item, _ in engine.trending(3)] == ["i0", "i1", "i2"]


def test_a_checkpoint_from_before_the_split_takes_the_current_line_up() -> None:
    engine, users = old_checkpoint()
    learned, mf = engine.sources["sknn"], engine.sources["mf"]
    current = default_hybrid()
    engine = engine.reconfigured(current)
    assert list(engine.sources) == list(registry.line_up())  # mf left out: not run by default
    # a deployment that names mf (RECSTREAM_SOURCES) keeps what the checkpoint's mf learned
    with_mf = old_checkpoint()[0].reconfigured(default_hybrid(sources=list(registry.REGISTRY)))
    served = with_mf.sources["mf"].recommend(users["u0"], k=3)
    assert served and served == mf.recommend(users["u0"], k=3)
    assert engine.sources["sknn"] is learned and engine.sources["cf"] is current.sources["cf"]
    assert engine.fallback == current.fallback and engine.policy is current.policy
    assert engine.recommend(users["u0"], k=5, exclude=users["u0"].seen)


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_a_moved_class_pickled_under_its_old_module_loads(
    old: tuple[str, str], new: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = getattr(importlib.import_module(new[0]), new[1])
    assert issubclass(cls, Recommender) and old[1] == new[1]
    spec = next(s for s in registry.SPECS if s.cls is cls)
    model = spec.build()
    model.learn_one(UserState("u"), "a", ts=0.0, value=4.0)
    model.learn_one(UserState("v", recent=["a"], session_items=["a"]), "b", ts=1.0, value=5.0)
    # the old module (models.popularity still exists) holding the class, as the old code did
    module = sys.modules.get(old[0]) or types.ModuleType(old[0])
    monkeypatch.setitem(sys.modules, old[0], module)
    monkeypatch.setattr(module, old[1], cls, raising=False)
    monkeypatch.setattr(cls, "__module__", old[0])
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    assert old[0].encode() in blob and not hasattr(sys.modules.get(old[0]), old[1])
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        pickle.loads(blob)
    restored = load_checkpoint_bytes(blob)
    assert type(restored) is cls
    user = UserState("w", recent=["a"], session_items=["a"])
    assert restored.recommend(user, k=5) == model.recommend(user, k=5)


def test_checkpoints_written_now_round_trip() -> None:
    engine = default_hybrid()
    engine.learn_one(UserState("u"), "a", ts=0.0)
    restored = load_checkpoint_bytes(dump_checkpoint_bytes(engine))
    assert list(restored.sources) == list(engine.sources) and restored.fallback == "popularity"
