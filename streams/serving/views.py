"""HTTP views: recommendations on demand, a user's state, an item's figures, health."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
from faust.web import Request, Response, View

from models.base import UserState
from state.store import user_state
from streams.schemas import Recommendation
from streams.serving.context import WorkerContext

__all__ = ["broker_up", "register_views"]


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

    @app.page("/recommendations/{user_id}")
    class RecommendationsView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            raw_k = request.query.get("k", str(settings.k))
            if not raw_k.isdigit() or not 1 <= int(raw_k) <= 1000:
                return self.json({"error": "k must be an integer from 1 to 1000"}, status=400)
            user, _ = await load_user(user_id)
            engine = rt.engine
            items = engine.recommend(user, k=int(raw_k), exclude=user.seen)
            rec = Recommendation.of(user, items, engine.phase(user).name)
            return self.json(rec.model_dump(mode="json"))

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
            body = {
                "status": "ok" if redis_ok and broker_ok else "degraded",
                "broker": {"url": settings.broker, "up": broker_ok},
                "redis": {"url": settings.redis_url, "up": redis_ok},
                "assigned_partitions": assigned,
                "last_batch_at": rt.last_batch_at,
                "uptime_s": round(time.time() - rt.started_at, 1),
                "checkpoint_loaded": rt.checkpoint_loaded,
            }
            return self.json(body, status=200 if body["status"] == "ok" else 503)
