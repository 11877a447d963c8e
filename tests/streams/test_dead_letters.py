"""Any record can be dead-lettered, and event time is bounded (issue #14, promises 2 and 3)."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from streams.schemas import DLQ_MAX_BYTES, DeadLetter, Interaction, event_time_error


@pytest.mark.parametrize(
    "raw",
    [
        b"x" * 900_000,  # plain text just under the producer's 1 MB limit
        b"\x00" * 400_000,  # control characters: 6 bytes each once JSON-escaped
        bytes(range(256)) * 4000,  # not UTF-8: base64 grows it by a third
    ],
)
def test_an_oversized_record_still_fits_a_dead_letter_with_its_length_and_digest(raw: bytes):
    dead = DeadLetter.of(raw, "bad", "interactions", 3, 17, key=b"k" * 5000)
    envelope = dead.model_dump_json().encode()
    assert len(envelope) <= DLQ_MAX_BYTES
    assert dead.raw_truncated is True
    assert dead.raw_length == len(raw)
    assert dead.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert raw.startswith(dead.raw_bytes()) and len(dead.raw_bytes()) > 1000
    assert (dead.topic, dead.partition, dead.offset) == ("interactions", 3, 17)


def test_a_small_record_is_kept_byte_for_byte():
    raw = b'{"user_id": "", "item_id": "\xff"}'
    dead = DeadLetter.of(raw, "bad", "interactions", 0, 1)
    assert dead.raw_bytes() == raw and dead.raw_truncated is False
    assert json.loads(dead.model_dump_json())["raw_length"] == len(raw)


def test_a_tombstone_is_marked_as_one():
    dead = DeadLetter.of(None, "tombstone: the record has no value", "interactions", 0, 4)
    assert dead.tombstone is True and dead.raw == "" and dead.raw_length == 0


@pytest.mark.parametrize("stamp", [True, False, "true"])
def test_a_boolean_timestamp_is_invalid(stamp: object):
    with pytest.raises(ValidationError, match="timestamp"):
        Interaction.model_validate({"user_id": "u", "item_id": "i", "timestamp": stamp})


ARRIVAL = 1_795_000_000.0  # late 2026


@pytest.mark.parametrize(
    ("stamp", "problem"),
    [
        ("9999-01-01T00:00:00Z", "ahead"),
        (ARRIVAL + 2 * 86400, "ahead"),
        (99_999_999_999, "ahead"),  # year 5138 in seconds
        (500_000_000_000, "before 1990"),  # read as milliseconds: 1985
        (0, "before 1990"),
        ("1989-12-31T23:59:59Z", "before 1990"),
    ],
)
def test_event_time_far_ahead_of_arrival_or_before_1990_is_refused(stamp: object, problem: str):
    ts = Interaction.model_validate({"user_id": "u", "item_id": "i", "timestamp": stamp}).timestamp
    error = event_time_error(ts, arrival=ARRIVAL, max_skew=86400.0)
    assert error is not None and problem in error


@pytest.mark.parametrize("stamp", [ARRIVAL, ARRIVAL + 3600, 880_000_000.0, None])
def test_event_time_within_the_skew_or_in_the_past_is_accepted(stamp: float | None):
    assert event_time_error(stamp, arrival=ARRIVAL, max_skew=86400.0) is None
