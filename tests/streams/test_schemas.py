from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.schemas import DeadLetter, Interaction


def test_interaction_defaults_and_ignores_unknown_fields():
    ev = Interaction.model_validate_json(b'{"user_id":"u","item_id":"i","colour":"red"}')
    assert ev.type == "click" and ev.timestamp is None and ev.event_id is None


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000_123, 1_700_000_000.123),  # milliseconds
        ("1700000000.5", 1_700_000_000.5),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
    ],
)
def test_timestamps_accept_iso8601_and_epoch_seconds(stamp, seconds):
    ev = Interaction(user_id="u", item_id="i", timestamp=stamp)
    assert ev.timestamp == pytest.approx(seconds)


@pytest.mark.parametrize(
    "payload",
    [
        {"item_id": "i"},
        {"user_id": "", "item_id": "i"},
        {"user_id": "  ", "item_id": "i"},
        {"user_id": 7, "item_id": "i"},
        {"user_id": "u", "item_id": "i", "type": "teleport"},
        {"user_id": "u", "item_id": "i", "value": "much"},
        {"user_id": "u", "item_id": "i", "timestamp": "yesterday"},
        {"user_id": "u", "item_id": "i", "context": "not an object"},
    ],
)
def test_invalid_interactions_are_rejected(payload):
    with pytest.raises(ValidationError):
        Interaction.model_validate(payload)


def test_non_finite_values_are_rejected():
    with pytest.raises(ValidationError):
        Interaction.model_validate_json(b'{"user_id":"u","item_id":"i","value":NaN}')


@pytest.mark.parametrize("raw", [b'{"a": "caf\xc3\xa9"}', b"\xff\x00\x80 not utf-8", b""])
def test_dead_letters_keep_the_original_bytes_losslessly(raw):
    letter = DeadLetter.of(raw, "bad", "interactions", 3, 42, key=b"u1")
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.raw_bytes() == raw
    assert (again.partition, again.offset, again.key) == (3, 42, "u1")
