from __future__ import annotations

import pytest

from streams.tools.datasets import DataSetError, read_catalogue, read_dataset


def test_csv_events_come_in_timestamp_order_with_ties_in_file_order(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id;item_id;rating;timestamp\nu1;a;4;20\nu2;b;5;10\nu3;c;3;20\n")
    ds = read_dataset(path, "csv")
    assert [e["item_id"] for e in ds.events] == ["b", "a", "c"]
    assert ds.events[0]["value"] == 5.0 and ds.events[0]["type"] == "rating"
    assert ds.events[1]["event_id"] == "events.csv:2"


def test_csv_without_user_or_item_column_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("who,what\n1,2\n")
    with pytest.raises(DataSetError, match="user_id and item_id"):
        read_dataset(path, "csv")


def test_jsonl_skips_broken_lines_and_says_which(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"user_id":"u","item_id":"a","timestamp":5}\n{oops\n[1]\n'
        '{"user_id":"u","item_id":"b","timestamp":1}\n'
    )
    ds = read_dataset(path, "jsonl")
    assert [e["item_id"] for e in ds.events] == ["b", "a"]
    assert [s.split(":")[0] for s in ds.skipped] == ["line 2", "line 3"]


def test_movielens_layout_reads_ratings_and_the_genre_catalogue(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t4\t200\n2\t11\t5\t100\n")
    (tmp_path / "u.genre").write_text("Action|0\nComedy|1\n\n")
    (tmp_path / "u.item").write_text("10|Film A|x|y|z|1|0\n11|Film B|x|y|z|1|1\n")
    ds = read_dataset(tmp_path, "movielens")
    assert [(e["user_id"], e["item_id"], e["value"]) for e in ds.events] == [
        ("2", "11", 5.0),
        ("1", "10", 4.0),
    ]
    assert ds.items[1] == {
        "item_id": "11",
        "op": "upsert",
        "title": "Film B",
        "tags": ["Action", "Comedy"],
    }


def test_unknown_format_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(DataSetError, match="unknown format"):
        read_dataset(tmp_path, "parquet")
    with pytest.raises(DataSetError, match="not found"):
        read_dataset(tmp_path / "nope.csv", "csv")


def test_catalogue_csv_splits_tags_on_bars(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,tags\na,Alpha,sci-fi|space\n")
    assert read_catalogue(path) == [
        {"item_id": "a", "op": "upsert", "title": "Alpha", "tags": ["sci-fi", "space"]}
    ]
