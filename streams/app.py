"""The Faust app: topics, agents and web views, built from one :class:`Settings`.

Nothing connects at import time; :func:`create_app` builds an app object that
``recstream worker`` runs.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import tempfile
import time
from typing import Any

import faust
from faust.web import Request, Response, View
from pydantic import ValidationError

from models.base import UserState
from models.factory import default_hybrid
from models.hybrid import HybridRecommender
from state.store import RedisState
from streams.dashboard import register_dashboard  # issue 5: live dashboard
from streams.metrics import LiveMetrics  # issue 5: live dashboard
from streams.processor import BatchProcessor, Record, to_recommendation, validation_error_text
from streams.schemas import DeadLetter, ItemEvent
from streams.settings import Settings
from streams.transport import Transport

__all__ = ["TOPICS", "Runtime", "create_app"]

log = logging.getLogger(__name__)

#: Base names of the topics the worker uses (each behind ``settings.topic_prefix``).
TOPICS = ("interactions", "items", "recommendations", "interactions.dlq")
CHECKPOINT_VERSION = 1


class Runtime:
    """What the agents and views share inside one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = RedisState(settings.redis_url, settings.app_id)
        self.engine: HybridRecommender = default_hybrid(
            thresholds=settings.thresholds, half_life=settings.half_life
        )
        self.processor = BatchProcessor(
            settings, self.store, self.engine, settings.topic("interactions")
        )
        self.started_at = time.time()
        self.last_batch_at: float | None = None
        self.last_checkpoint_at = time.monotonic()
        self.checkpoint_loaded = False
        self.metrics = LiveMetrics()  # issue 5: figures for /dashboard, /stats, /metrics

    # -- checkpoints --------------------------------------------------------------------
    async def load_checkpoint(self) -> None:
        blob, meta = await self.store.load_models()
        if blob is None or meta.get("version") != CHECKPOINT_VERSION:
            log.info("no model checkpoint: models start cold")
            return
        try:
            engine = pickle.loads(blob)
        except Exception:
            log.exception("model checkpoint unreadable: models start cold")
            return
        # learned state from the checkpoint; thresholds, weights and sources from this code
        engine = engine.reconfigured(self.engine)
        self.engine = engine
        self.processor.engine = engine
        self.processor.model_offsets = {k: int(v) for k, v in meta.get("offsets", {}).items()}
        self.checkpoint_loaded = True
        log.info("models restored from checkpoint at offsets %s", self.processor.model_offsets)

    async def save_checkpoint(self) -> None:
        blob = pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL)
        meta = {
            "version": CHECKPOINT_VERSION,
            "offsets": dict(self.processor.model_offsets),
            "saved_at": time.time(),
            "bytes": len(blob),
        }
        await self.store.save_models(blob, meta)
        self.last_checkpoint_at = time.monotonic()

    async def maybe_checkpoint(self, consumer: Any = None) -> None:
        """Checkpoint the models, then commit Kafka offsets: the commit never runs ahead of
        what the checkpoint reflects (the batch being processed is not acked yet), so after
        a crash the replay from the committed offset covers everything the models lack."""
        if time.monotonic() - self.last_checkpoint_at >= self.settings.checkpoint_interval:
            await self.save_checkpoint()
            if consumer is not None:
                await consumer.commit()

    # -- reads for the views ------------------------------------------------------------
    async def user(self, user_id: str) -> UserState:
        return self.processor.new_user(user_id, await self.store.get_user(user_id))

    async def broker_up(self) -> bool:
        for server in self.settings.bootstrap_servers:
            host, _, port = server.rpartition(":")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
                writer.close()
                return True
            except (OSError, TimeoutError):
                continue
        return False


def create_app(settings: Settings) -> faust.App:
    """A Faust app wired to ``settings``: agents for interactions and items, HTTP views."""
    rt = Runtime(settings)
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        store="memory://",
        # Faust wants a data directory even with in-memory tables; keep it out of the cwd.
        datadir=tempfile.mkdtemp(prefix=f"recstream-{settings.app_id}-"),
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=settings.rebalance_timeout,
        broker_heartbeat_interval=max(0.5, settings.rebalance_timeout / 10),
        # Offsets are committed right after each model checkpoint (Runtime.maybe_checkpoint),
        # never on Faust's own timer, so Kafka's position never runs ahead of the models.
        broker_commit_interval=10**6,
        broker_commit_every=10**9,
        web_enabled=True,
    )
    # Faust's transport with a short fetch wait: Tansu holds a fetch its whole wait even when
    # records arrive, which made an idle worker see a new event up to 1.5 s late.
    app.transport = Transport(app.conf.broker_consumer, app)
    app.runtime = rt  # type: ignore[attr-defined]

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    interactions = raw_topic("interactions")
    items = raw_topic("items")
    recommendations = raw_topic("recommendations")
    dlq = raw_topic("interactions.dlq")

    async def send_dead(dead: list[DeadLetter]) -> None:
        futures = [
            await dlq.send(
                key=d.key.encode() if d.key else None, value=d.model_dump_json().encode()
            )
            for d in dead
        ]
        await asyncio.gather(*futures)  # delivered before the offsets are recorded

    @app.agent(interactions, concurrency=1)
    async def process_interactions(stream: faust.StreamT) -> None:
        await rt.load_checkpoint()
        try:
            async for batch in stream.take_events(settings.batch_size, within=settings.batch_wait):
                records = [
                    Record(
                        value=e.message.value,
                        partition=e.message.partition,
                        offset=e.message.offset,
                        timestamp=e.message.timestamp,
                        key=e.message.key,
                    )
                    for e in batch
                ]
                out = await rt.processor.process(records)
                if out.dead:
                    await send_dead(out.dead)
                await rt.processor.commit(out)
                for rec in out.recommendations:
                    await recommendations.send(
                        key=rec.user_id.encode(), value=rec.model_dump_json().encode()
                    )
                rt.last_batch_at = time.time()
                rt.metrics.record_batch(out, rt.last_batch_at)  # issue 5: live dashboard
                await rt.maybe_checkpoint(app.consumer)
        finally:
            await asyncio.shield(rt.save_checkpoint())

    @app.agent(items, concurrency=1)
    async def process_items(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                item = ItemEvent.model_validate_json(msg.value or b"")
            except ValidationError as exc:
                dead = DeadLetter.of(
                    msg.value, validation_error_text(exc), msg.topic, msg.partition, msg.offset
                )
                await send_dead([dead])
                continue
            if item.op == "delete":
                rt.engine.forget_item(item.item_id)
            else:
                rt.engine.upsert_item(
                    item.item_id, title=item.title, text=item.text, tags=item.all_tags
                )

    register_views(app, rt)
    register_dashboard(app, rt)  # issue 5: /dashboard, /stats, /metrics
    return app


def register_views(app: faust.App, rt: Runtime) -> None:
    """HTTP: recommendations on demand, a user's state, health."""
    settings = rt.settings

    @app.page("/recommendations/{user_id}")
    class RecommendationsView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            raw_k = request.query.get("k", str(settings.k))
            if not raw_k.isdigit() or not 1 <= int(raw_k) <= 1000:
                return self.json({"error": "k must be an integer from 1 to 1000"}, status=400)
            user = await rt.user(user_id)
            items = rt.engine.recommend(user, k=int(raw_k), exclude=user.seen)
            rec = to_recommendation(user, items, rt.engine.phase(user).name)
            return self.json(rec.model_dump(mode="json"))

    @app.page("/users/{user_id}")
    class UserView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            data = await rt.store.get_user(user_id)
            user = rt.processor.new_user(user_id, data)
            body: dict[str, Any] = {
                "user_id": user_id,
                "known": data is not None,
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
            pop = rt.engine.sources.get("popularity")
            body = {
                "item_id": item_id,
                "deleted": item_id in rt.engine.deleted,
                "popularity": pop.score(item_id) if pop is not None else None,  # type: ignore[attr-defined]
            }
            return self.json(body)

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            redis_ok, broker_ok = await asyncio.gather(rt.store.ping(), rt.broker_up())
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
