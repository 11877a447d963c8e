"""HTTP views: recommendations on demand, a user's state, an item's figures, health.

``/recommendations/{user_id}`` answers with the list last published to the user (kept in their
state in Redis) and ranks afresh only on ``?fresh=true``, for a ``k`` above ``RECSTREAM_K`` or
for a user with no published list (a user never seen gets the cold-start list). Fresh rankings
share the worker's event loop with the stream, so they are bounded (``k`` at most
``RECSTREAM_MAX_K``), taken one at a time and paced: a storm of requests slows the answers,
never the stream.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
from faust.web import Request, Response, View

from models.base import UserState
from state.store import user_state
from streams.schemas import recommendation_message
from streams.serving.context import WorkerContext

__all__ = ["broker_up", "register_views"]

FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


async def broker_up(servers: list[str], timeout: float = 1.0) -> bool:
    """Whether any of the bootstrap ``servers`` (``host:port``) accepts a connection."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
            writer.close()
            return True
        except (OSError, TimeoutError):
            continue
    return False


def register_views(app: faust.App, rt: WorkerContext) -> None:
    """``/recommendations/{user_id}``, ``/users/{user_id}``, ``/items/{item_id}``, ``/health``."""
    settings = rt.settings

    async def load_user(user_id: str) -> tuple[UserState, bool]:
        data = await rt.store.get_user(user_id)
        return user_state(user_id, data, settings.history), data is not None

    # Fresh rankings run on the event loop (the models are not thread-safe: the agent
    # mutates them between awaits), one at a time, and each is followed by a pause as long
    # as it took: however many requests queue, they get at most about half of the loop and
    # the stream's agent runs between any two of them.
    ranking = asyncio.Lock()

    async def rank(user: UserState, k: int) -> dict[str, Any]:
        async with ranking:
            await asyncio.sleep(0)  # whatever became ready while we waited goes first
            async with rt.model_lock:  # not while a checkpoint pickles the models
                started = time.perf_counter()
                engine = rt.engine
                items = engine.recommend(user, k=k, exclude=user.seen)
                rec = recommendation_message(user, items, engine.phase(user).name, titles=rt.titles)
            await asyncio.sleep(time.perf_counter() - started)
        return {**rec, "served": "fresh"}

    def published(last: dict[str, Any] | None, k: int) -> dict[str, Any] | None:
        """The list last published to a user (``last``, the ``recommendations`` message), items
        since deleted left out, or None when there is none to answer ``k`` with."""
        if k > settings.k or not last:  # published lists hold RECSTREAM_K items
            return None
        deleted = rt.engine.deleted
        items = [i for i in last.get("items", []) if i.get("item_id") not in deleted][:k]
        if not items:
            return None
        return {**last, "items": items, "served": "published"}

    @app.page("/recommendations/{user_id}")
    class RecommendationsView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            raw_k = request.query.get("k", str(min(settings.k, settings.max_k)))
            if not raw_k.isdigit() or not 1 <= int(raw_k) <= settings.max_k:
                return self.json(
                    {
                        "error": f"k must be an integer from 1 to {settings.max_k} "
                        f"(the maximum, RECSTREAM_MAX_K); got {raw_k!r}"
                    },
                    status=400,
                )
            raw_fresh = request.query.get("fresh", "false").lower()
            if raw_fresh not in FLAGS:
                return self.json({"error": "fresh must be true or false"}, status=400)
            k, fresh = int(raw_k), FLAGS[raw_fresh]
            user, known = await load_user(user_id)
            body = None if fresh or not known else published(await rt.store.get_list(user_id), k)
            return self.json(body or await rank(user, k))

    @app.page("/users/{user_id}")
    class UserView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            user, known = await load_user(user_id)
            body: dict[str, Any] = {
                "user_id": user_id,
                "known": known,
                "interactions": user.interactions,
                "phase": rt.engine.phase(user).name,
                "recent_items": user.recent[-20:][::-1],
                "session_id": user.session_id,
                "session_items": user.session_items,
                "last_seen": user.last_seen,
                "last_served": user.last_served,
                "hits": user.hits,
                "profile_top": sorted(user.profile.items(), key=lambda kv: -abs(kv[1]))[:10],
            }
            return self.json(body)

    @app.page("/items/{item_id}")
    class ItemView(View):
        async def get(self, request: Request, item_id: str) -> Response:
            engine = rt.engine
            body = {
                "item_id": item_id,
                "deleted": item_id in engine.deleted,
                "popularity": engine.popularity(item_id),
            }
            return self.json(body)

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            redis_ok, broker_ok = await asyncio.gather(
                rt.store.ping(), broker_up(settings.bootstrap_servers)
            )
            assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
            ready = rt.ready.is_set()
            # a failing checkpoint loses nothing, but Kafka's offsets stay behind the last one
            # written: the gap a restart replays grows (and retention may overtake it)
            ok = redis_ok and broker_ok and rt.stuck is None and rt.checkpoint_error is None
            body = {
                # starting: models being restored or the catalogue being read (503 meanwhile)
                "status": ("ok" if ok else "degraded") if ready else "starting",
                "ready": ready,
                "broker": {"url": settings.broker, "up": broker_ok},
                "redis": {"url": settings.redis_url, "up": redis_ok},
                # why the worker cannot get past its batch (it retries, and resumes by itself)
                "stuck": rt.stuck,
                "unrecoverable_events": rt.unrecoverable,
                "assigned_partitions": assigned,
                "last_batch_at": rt.last_batch_at,
                "uptime_s": round(time.time() - rt.started_at, 1),
                "checkpoint_loaded": rt.checkpoint_loaded,
                "checkpoint": {
                    "written_at": rt.checkpoint_written_at,
                    "error": rt.checkpoint_error,
                },
                "catalogue_records": rt.catalogue_records,
                "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            }
            return self.json(body, status=200 if body["status"] == "ok" else 503)
