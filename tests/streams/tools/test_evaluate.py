"""The evaluation's metric code against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from models.evaluation import Scoreboard, rank_metrics
from streams.tools.datasets import DataSet
from streams.tools.evaluate import evaluate, format_table


@pytest.mark.parametrize(
    ("recs", "target", "k", "expected"),
    [
        (["a", "b", "c"], "a", 10, (1.0, 1.0, 1.0)),
        (["a", "b", "c"], "c", 10, (1.0, 0.5, 1 / 3)),  # rank 2: 1/log2(4) = 0.5
        (["a", "b", "c"], "c", 2, (0.0, 0.0, 0.0)),  # beyond k
        ([], "a", 10, (0.0, 0.0, 0.0)),
    ],
)
def test_rank_metrics_match_hand_computed_values(recs, target, k, expected):
    assert rank_metrics(recs, target, k) == pytest.approx(expected)


def test_scoreboard_averages_overall_and_per_phase_and_computes_coverage_and_errors():
    board = Scoreboard("m", k=2)
    board.add(["a", "b"], "a", "cold")  # hit at rank 0: ndcg 1, rr 1
    board.add(["b", "c"], "c", "warm")  # hit at rank 1: ndcg 1/log2(3), rr 1/2
    board.add(["b", "c"], "d", "warm")  # miss
    board.add_rating(4.0, 5.0)
    board.add_rating(2.0, 1.0)
    board.add_rating(3.0, 3.0)
    s = board.summary(catalogue_size=6)
    assert s["hr"] == pytest.approx(2 / 3)
    assert s["ndcg"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert s["mrr"] == pytest.approx(1.5 / 3)
    assert s["coverage"] == pytest.approx(3 / 6)  # a, b, c of six items
    assert s["by_phase"]["cold"] == {"events": 1, "hr": 1.0, "ndcg": 1.0, "mrr": 1.0}
    assert s["by_phase"]["warm"]["hr"] == pytest.approx(0.5)
    assert s["mae"] == pytest.approx(2 / 3)
    assert s["rmse"] == pytest.approx(math.sqrt(2 / 3))


def test_prequential_replay_scores_before_it_learns():
    # z clicks "a"; then every user clicks "a", then "b". Popularity at k=1:
    #   z:a   miss (nothing learned yet)            u0:a  hit ("a" leads)
    #   u0:b  miss ("a" is seen, "b" not learned)    every later a and b: hit
    events = [{"user_id": "z", "item_id": "a", "timestamp": 0}]
    for u in range(5):
        events.append({"user_id": f"u{u}", "item_id": "a", "timestamp": 2 * u + 1})
        events.append({"user_id": f"u{u}", "item_id": "b", "timestamp": 2 * u + 2})
    result = evaluate(DataSet("toy", events), ["popularity"], k=1, progress=False)
    row = result["results"][0]
    assert result["events"] == 11
    assert row["hr"] == pytest.approx(9 / 11)
    assert row["by_phase"]["cold"]["events"] == 6 and row["by_phase"]["cold"]["hr"] == 5 / 6
    assert row["by_phase"]["warm"]["events"] == 5 and row["by_phase"]["warm"]["hr"] == 4 / 5
    assert row["coverage"] == pytest.approx(1.0)  # both items were recommended at some point
    assert "popularity" in format_table(result)
