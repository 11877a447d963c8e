from __future__ import annotations

import pytest

from streams.tools.datasets import DataSetError, read_catalogue, read_dataset


def test_csv_events_come_in_timestamp_order_with_ties_in_file_order(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id;item_id;rating;timestamp\n"
        "u1;a;4;1700000020\nu2;b;5;1700000010\nu3;c;3;1700000020\n"
    )
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
        '{"user_id":"u","item_id":"a","timestamp":1700000005}\n{oops\n[1]\n'
        '{"user_id":"u","item_id":"b","timestamp":1700000001}\n'
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


def test_rows_the_worker_would_dead_letter_are_set_aside_with_their_line_and_reason(tmp_path):
    # issue #17, item 4: an empty user_id or a timestamp `notatime` went to the DLQ unannounced
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,timestamp\n"
        "u1,a,1700000000\n"
        ",b,1700000001\n"
        "u2,c,notatime\n"
        "u3,,1700000003\n"
        "u4,d,1700000004\n"
    )
    ds = read_dataset(path, "csv")
    assert [e["item_id"] for e in ds.events] == ["a", "d"]
    assert ds.rows == 5
    assert [s.split(":")[0] for s in ds.skipped] == ["line 3", "line 4", "line 5"]
    assert "user_id" in ds.skipped[0] and "timestamp" in ds.skipped[1]
    assert "item_id" in ds.skipped[2]


def test_jsonl_events_are_checked_as_the_worker_checks_them(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"user_id":"u","item_id":"a","timestamp":1700000000}\n'
        '{"user_id":"u","item_id":"b","type":"teleport"}\n'
        '{"user_id":"u","item_id":"c","timestamp":99}\n'
        '{"user_id":"u","item_id":"d","timestamp":4102444800}\n'
    )
    ds = read_dataset(path, "jsonl")
    assert [e["item_id"] for e in ds.events] == ["a"]
    assert [s.split(":")[0] for s in ds.skipped] == ["line 2", "line 3", "line 4"]
    assert "type" in ds.skipped[0] and "1990" in ds.skipped[1] and "ahead" in ds.skipped[2]
