"""Fuzzing the record path (issue #14): random bytes and JSON, huge and nested values. Nothing
escapes the processor; every record is applied, a duplicate, or dead-lettered in an envelope
that fits the broker's limit."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.factory import default_hybrid
from state.store import RedisState
from streams.schemas import DLQ_MAX_BYTES
from streams.worker.owner import ModelOwner
from streams.worker.processor import BatchProcessor
from streams.worker.records import Record

pytestmark = pytest.mark.integration

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
events = st.fixed_dictionaries(
    {"user_id": st.one_of(st.text(max_size=8), st.sampled_from(["u1", "u2"]), json_values)},
    optional={
        "item_id": st.one_of(st.text(max_size=8), st.sampled_from(["a", "b"]), json_values),
        "event_id": st.one_of(st.text(max_size=6), st.sampled_from(["e1", "e2"]), json_values),
        "type": st.one_of(st.sampled_from(["view", "rating", "dislike", "nope"]), json_values),
        "value": json_values,
        "timestamp": st.one_of(
            st.floats(min_value=-1e13, max_value=1e13), st.sampled_from(["2026-01-01", "x"])
        ),
        "session_id": json_values,
        "context": json_values,
    },
)


def encode(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


values = st.one_of(
    st.binary(max_size=64),
    events.map(encode),
    json_values.map(encode),
    st.just(b"x" * 1_500_000),
    st.just(encode({"user_id": "u1", "item_id": "a", "pad": "\x00" * 400_000})),
    st.none(),
)


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(st.tuples(values, st.one_of(st.none(), st.binary(max_size=8))), max_size=12))
def test_every_record_is_applied_dropped_as_a_duplicate_or_dead_lettered(settings, batch):
    async def scenario() -> None:
        store = RedisState(settings.redis_url, settings.app_id)
        proc = BatchProcessor(settings, store, ModelOwner(default_hybrid(), store, 60.0), "t")
        records = [Record(v, 0, n, 1_790_000_000.0, k) for n, (v, k) in enumerate(batch)]
        try:
            out = await proc.process(records)
            await proc.commit(out)
        finally:
            await store.delete_all()
            await store.close()
        s = out.stats
        assert s.events + s.duplicates + s.dead + s.replayed == len(records)
        assert len(out.dead) == s.dead
        assert all(len(d.model_dump_json()) <= DLQ_MAX_BYTES for d in out.dead)
        assert sorted({d.offset for d in out.dead}) == sorted(d.offset for d in out.dead)

    asyncio.run(scenario())
