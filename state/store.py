"""Redis state: the only code that knows recstream's Redis keys.

Per batch the worker makes two round trips: :meth:`RedisState.load_batch` reads the batch's
users, the dedup markers already set and the partitions' applied offsets in one pipeline
(three multi-key commands, whatever the batch's size: redis-py's cost is per command), and
:meth:`RedisState.commit_batch` writes the new user states, the markers (with a TTL), the
offsets and the counters in one Lua script, so a batch's effects land all together or not at
all, and only if nobody changed its partitions' offsets or its users meanwhile (the fence that
keeps a paused or partitioned worker from overwriting newer state). Multi-key commands and the
script need the batch's keys on one Redis (not Redis Cluster slots).

Keys (``P`` is the app id): ``P:user:{uid}`` (JSON user state: what the worker reads per
batch), ``P:list:{uid}`` (the list last published to the user, the very JSON sent to the
``recommendations`` topic, for ``GET /recommendations``; the ``{uid}`` hash tag keeps a
user's keys in one Redis Cluster slot), ``P:event:ID`` (dedup marker), ``P:offsets`` (hash
``topic:partition`` -> last applied offset), ``P:models:W`` and ``P:models:W:meta`` (worker
``W``'s model checkpoint and the offsets it reflects; ``P:checkpoints`` indexes them by time),
``P:stats`` (the :class:`~state.stats.BatchStats` counters of every batch, summed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic_core
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from models.base import UserState
from state.stats import BatchStats

__all__ = [
    "AppliedOffsetsReader",
    "BatchView",
    "Fenced",
    "RedisState",
    "UserConflict",
    "bytes_per_user",
    "offsets_key",
    "user_state",
    "version",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


#: A batch's whole write, atomic and conditional (the fence): it applies only when every
#: partition's applied offset and every user's state are still what the batch read.
#: KEYS: offsets hash, stats hash, users..., markers..., lists...
#: ARGV: ttl, #users, #markers, #checks, #lists, (tp, expected offset or '')..., (expected sha1
#: of the user's JSON or '', new JSON) per user..., marker values..., lists..., #offsets, (tp,
#: offset)..., #counters, (name, n)...
_COMMIT = """
local ttl, nu, nm, nl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local a = 6
for i = 1, tonumber(ARGV[4]) do
  local have = redis.call('HGET', KEYS[1], ARGV[a]) or ''
  if have ~= ARGV[a + 1] then return {'fenced', ARGV[a], have} end
  a = a + 2
end
for i = 1, nu do
  local cur = redis.call('GET', KEYS[2 + i])
  local have = ''
  if cur then have = redis.sha1hex(cur) end
  if have ~= ARGV[a + 2 * (i - 1)] then return {'conflict', KEYS[2 + i], have} end
end
for i = 1, nu do redis.call('SET', KEYS[2 + i], ARGV[a + 2 * (i - 1) + 1]) end
a = a + 2 * nu
for i = 1, nm do redis.call('SET', KEYS[2 + nu + i], ARGV[a + i - 1], 'EX', ttl) end
a = a + nm
for i = 1, nl do redis.call('SET', KEYS[2 + nu + nm + i], ARGV[a + i - 1]) end
a = a + nl
local n = tonumber(ARGV[a]); a = a + 1
for i = 1, n do redis.call('HSET', KEYS[1], ARGV[a], ARGV[a + 1]); a = a + 2 end
n = tonumber(ARGV[a]); a = a + 1
for i = 1, n do redis.call('HINCRBY', KEYS[2], ARGV[a], ARGV[a + 1]); a = a + 2 end
return {'ok', '', ''}
"""


class Fenced(Exception):
    """A partition's applied offset moved since the batch was read: another worker owns the
    partition now. The batch must be dropped (its records are that worker's)."""


class UserConflict(Exception):
    """A user's state changed since the batch was read (their events reach two partitions):
    the batch must be read and applied again."""


def version(raw: bytes | None) -> str:
    """What the fence compares a user's stored JSON by: its sha1 ('' when there is none)."""
    return hashlib.sha1(raw).hexdigest() if raw else ""


def user_state(user_id: str, data: Mapping[str, Any] | None, max_history: int) -> UserState:
    """A user's state as stored (``data`` from Redis), or a new user's."""
    if data:
        return UserState.from_dict(dict(data), max_history=max_history)
    return UserState(user_id, max_history=max_history)


def bytes_per_user(client: redis.Redis, prefix: str) -> float | None:
    """What Redis spends on each user under app id ``prefix``, on average: its own ``MEMORY
    USAGE`` of the users' states and of the lists last published to them, over the users
    (None when there is none). ``client`` is a blocking client (a benchmark's)."""
    users = list(client.scan_iter(match=f"{prefix}:user:*", count=1000))
    if not users:
        return None
    pipe = client.pipeline(transaction=False)
    for key in [*users, *client.scan_iter(match=f"{prefix}:list:*", count=1000)]:
        pipe.memory_usage(key, samples=0)
    return round(sum(s for s in pipe.execute() if s is not None) / len(users), 1)


def offsets_key(prefix: str) -> str:
    """The hash of each ``topic:partition``'s last applied offset under app id ``prefix``."""
    return f"{prefix}:offsets"


@dataclass
class BatchView:
    """What Redis knows about one batch before it is applied."""

    users: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # user -> version() as read
    markers: dict[str, str] = field(default_factory=dict)  # dedup key -> where it was applied
    applied: dict[str, int] = field(default_factory=dict)


class RedisState:
    """Async access to recstream's keys under ``prefix`` on one Redis.

    Calls retry with capped exponential backoff while Redis is unreachable, so a Redis
    outage pauses the caller (and so consumption) instead of dropping events.
    """

    def __init__(self, url: str, prefix: str, *, max_backoff: float = 5.0) -> None:
        self.url = url
        self.prefix = prefix
        self.max_backoff = max_backoff
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=10.0
        )

    # -- keys ---------------------------------------------------------------------------
    def user_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}"

    def list_key(self, user_id: str) -> str:
        return f"{self.prefix}:list:{{{user_id}}}"

    def event_key(self, event_id: str) -> str:
        return f"{self.prefix}:event:{event_id}"

    @property
    def offsets_key(self) -> str:
        return offsets_key(self.prefix)

    @property
    def stats_key(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def checkpoints_key(self) -> str:
        return f"{self.prefix}:checkpoints"

    @property
    def models_key(self) -> str:
        return f"{self.prefix}:models"

    # -- plumbing -----------------------------------------------------------------------
    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = 0.1
        while True:
            try:
                return await call()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("Redis unavailable during %s (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(self.max_backoff, delay * 2)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), 2.0))
        except Exception:
            return False

    async def close(self) -> None:
        await self.client.aclose()

    # -- batches ------------------------------------------------------------------------
    async def load_batch(
        self, user_ids: Iterable[str], dedup_keys: Iterable[str], tps: Iterable[str]
    ) -> BatchView:
        """The batch's users, the dedup markers already set (with the place in the log each
        event was applied at) and the partitions' applied offsets."""
        users, events, parts = list(user_ids), list(dedup_keys), list(tps)

        async def call() -> BatchView:
            # three commands whatever the batch's size (redis-py spends more per command
            # than Redis does): MGET users, MGET dedup markers, HMGET offsets
            pipe = self.client.pipeline(transaction=False)
            if users:
                pipe.mget([self.user_key(uid) for uid in users])
            if events:
                pipe.mget([self.event_key(eid) for eid in events])
            if parts:
                pipe.hmget(self.offsets_key, parts)
            res = iter(await pipe.execute())
            view = BatchView()
            if users:
                for uid, raw in zip(users, next(res), strict=True):
                    view.users[uid] = pydantic_core.from_json(raw) if raw else None
                    view.versions[uid] = version(raw)
            if events:
                marks = next(res)
                view.markers = {
                    e: m.decode() for e, m in zip(events, marks, strict=True) if m is not None
                }
            if parts:
                for tp, off in zip(parts, next(res), strict=True):
                    if off is not None:
                        view.applied[tp] = int(off)
            return view

        return await self._retry("load_batch", call)

    async def commit_batch(
        self,
        users: Mapping[str, dict[str, Any]],
        markers: Mapping[str, str],
        offsets: Mapping[str, int],
        ttl: int,
        stats: BatchStats | None = None,
        *,
        versions: Mapping[str, str] | None = None,
        expected: Mapping[str, int | None] | None = None,
        lists: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write a batch in one atomic script: user states, dedup markers (value: where the
        event was applied) with their TTL, the lists published to users (``lists``: user ->
        the message's JSON), the partitions' applied ``offsets`` and the counters. Fenced:
        raises :class:`Fenced` when a partition's applied offset is no longer ``expected``
        (``None``: none), :class:`UserConflict` when a user's stored state is no longer the
        one of ``versions`` (as :attr:`BatchView.versions` read it)."""
        uids = list(users)
        payload = [pydantic_core.to_json(users[u]) for u in uids]  # compact, in Rust
        keys = [
            self.offsets_key,
            self.stats_key,
            *(self.user_key(u) for u in uids),
            *(self.event_key(m) for m in markers),
            *(self.list_key(u) for u in lists or {}),
        ]
        checks = [(tp, "" if off is None else str(off)) for tp, off in (expected or {}).items()]
        counters = stats.counters() if stats else {}
        args: list[Any] = [ttl, len(uids), len(markers), len(checks), len(lists or {})]
        args += [x for pair in checks for x in pair]
        for uid, body in zip(uids, payload, strict=True):
            args += [(versions or {}).get(uid, ""), body]
        args += list(markers.values())
        args += list((lists or {}).values())
        args += [len(offsets), *(x for tp, off in offsets.items() for x in (tp, off))]
        args += [len(counters), *(x for name, n in counters.items() for x in (name, n))]

        async def call() -> list[bytes]:
            return await self.client.eval(_COMMIT, len(keys), *keys, *args)

        verdict, what, have = (x.decode() for x in await self._retry("commit_batch", call))
        if verdict == "fenced":
            raise Fenced(f"{what}: applied offset is {have or 'none'} now, not what was read")
        if verdict == "conflict":
            raise UserConflict(f"{what} changed since it was read")

    # -- reads for the HTTP views -------------------------------------------------------
    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        raw = await self._retry("get_user", lambda: self.client.get(self.user_key(user_id)))
        return json.loads(raw) if raw else None

    async def get_list(self, user_id: str) -> dict[str, Any] | None:
        """The list last published to ``user_id`` (the ``recommendations`` message), if any."""
        raw = await self._retry("get_list", lambda: self.client.get(self.list_key(user_id)))
        return json.loads(raw) if raw else None

    async def get_stats(self) -> BatchStats:
        """Every worker's batches summed (``users_moved``: users per phase)."""
        raw = await self._retry("get_stats", lambda: self.client.hgetall(self.stats_key))
        return BatchStats.from_counters({k.decode(): int(v) for k, v in raw.items()})

    # -- model checkpoints --------------------------------------------------------------
    def write_models(self, worker: str, blob: bytes, meta: Mapping[str, Any]) -> None:
        """``worker``'s checkpoint (each worker has its own key: no last writer wins), and its
        time in the index that :meth:`load_models` picks the newest from; all at once.

        Blocking, on a connection of its own, for the thread or the forked child that pickled
        the models: the checkpoint's bytes (300 MB at 100,000 items) never pass through an
        event loop. Not retried: a failure raises, and the checkpoint is taken again later
        (until then the Kafka offsets stay behind the older one)."""
        key = f"{self.models_key}:{worker}"
        client = redis.Redis.from_url(self.url, socket_connect_timeout=2.0, socket_timeout=60.0)
        try:
            pipe = client.pipeline(transaction=True)
            pipe.set(key, blob)
            pipe.set(key + ":meta", json.dumps(dict(meta)))
            pipe.hset(self.checkpoints_key, worker, str(meta.get("saved_at", 0.0)))
            pipe.execute()
        finally:
            client.close()

    async def load_models(self) -> tuple[bytes | None, dict[str, Any]]:
        """The newest checkpoint of any worker (every worker's models learn every partition),
        with its meta; ``(None, {})`` when there is none."""

        async def call() -> tuple[bytes | None, dict[str, Any]]:
            index = await self.client.hgetall(self.checkpoints_key)
            for worker, _ in sorted(index.items(), key=lambda kv: -float(kv[1])):
                key = f"{self.models_key}:{worker.decode()}"
                pipe = self.client.pipeline(transaction=True)
                pipe.get(key)
                pipe.get(key + ":meta")
                blob, meta = await pipe.execute()
                if blob is not None:
                    return blob, (json.loads(meta) if meta else {})
            return None, {}

        return await self._retry("load_models", call)

    async def delete_all(self) -> int:
        """Remove every key under the prefix (tests and tools that own this prefix)."""
        n = 0
        async for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            n += await self.client.delete(key)
        return n


class AppliedOffsetsReader:
    """Synchronous reads of the workers' applied offsets, for tools outside the worker (the
    publisher's backpressure). One HGETALL per call; Redis errors propagate to the caller."""

    def __init__(self, url: str, prefix: str, *, timeout: float = 1.0) -> None:
        self.key = offsets_key(prefix)
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )

    def __call__(self) -> dict[str, int]:
        """``topic:partition`` -> the last offset a worker applied (missing: none yet)."""
        raw = self.client.hgetall(self.key)
        return {k.decode(): int(v) for k, v in raw.items()}

    def close(self) -> None:
        self.client.close()
