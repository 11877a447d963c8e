"""Cohort popularity: pure model logic, no I/O."""

from __future__ import annotations

import pytest

from models.base import UserState
from models.cohort import CohortPopularity

DAY = 24 * 3600.0


def _replay(model: CohortPopularity, histories: dict[str, list[str]], ts: float = 0.0) -> None:
    for uid, items in histories.items():
        user = UserState(uid)
        for item in items:
            model.learn_one(user, item, ts=ts)
            user.observe(item, ts=ts)


def test_newcomers_get_what_other_newcomers_picked_not_what_everyone_picks() -> None:
    pop = CohortPopularity(stages=(1,), half_lives=(DAY,))
    _replay(pop, {"u0": ["intro", "hit"], "u1": ["intro", "hit"], "u2": ["intro", "other"]})
    for _ in range(5):
        pop.learn_one(UserState("regular", interactions=10), "hit", ts=0.0)
    assert [c.item_id for c in pop.recommend(UserState("new"), k=1)] == ["intro"]
    regular = UserState("r", interactions=3)
    assert [c.item_id for c in pop.recommend(regular, k=3)] == ["hit", "other"]


def test_a_cohort_whose_picks_follow_fads_is_served_from_a_short_memory() -> None:
    pop = CohortPopularity(stages=(1,), half_lives=(100 * DAY, 3600.0), k=1, rate=0.2)
    newcomer = UserState("n")
    for hour in range(48):  # the fad changes every 6 hours; one evergreen pick an hour
        for _ in range(3):
            pop.learn_one(newcomer, f"fad{hour // 6}", ts=hour * 3600.0)
        pop.learn_one(newcomer, "evergreen", ts=hour * 3600.0)
    assert pop.half_life(0) == 3600.0
    assert [c.item_id for c in pop.recommend(UserState("x"), k=1)] == ["fad7"]
    assert pop.half_life(5) == 100 * DAY  # no evidence in that cohort: the first listed


def test_a_cohort_with_a_stable_favourite_among_noise_is_served_from_a_long_memory() -> None:
    pop = CohortPopularity(stages=(1,), half_lives=(3600.0, 100 * DAY), k=1, rate=0.2)
    newcomer = UserState("n")
    for hour in range(48):  # every other pick is the favourite, the rest one-offs
        item = "favourite" if hour % 2 == 0 else f"one-off{hour}"
        pop.learn_one(newcomer, item, ts=hour * 3600.0)
    assert pop.half_life(0) == 100 * DAY
    assert [c.item_id for c in pop.recommend(UserState("x"), k=1)] == ["favourite"]


def test_cohort_lists_exclude_seen_items_and_forget_deleted_ones() -> None:
    pop = CohortPopularity(stages=(1, 5))
    _replay(pop, {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["c", "b"]})
    assert [c.item_id for c in pop.recommend(UserState("new"), k=3, exclude={"a"})] == ["c"]
    pop.forget_item("a")
    assert [c.item_id for c in pop.recommend(UserState("new"), k=3)] == ["c"]
    assert all(c.sources == ["cohort"] for c in pop.recommend(UserState("w", interactions=1)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stages": (5, 1)},
        {"stages": (0, 5)},
        {"half_lives": ()},
        {"half_lives": (0.0,)},
        {"k": 0},
        {"rate": 0.0},
    ],
)
def test_bad_cohort_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CohortPopularity(**kwargs)
