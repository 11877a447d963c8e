"""The Faust app: topics, agents and web views, built from one :class:`Settings`.

Nothing connects at import time; :func:`create_app` builds an app object that
``recstream worker`` runs. The path of one record: the ``interactions`` agent takes a batch,
:class:`~streams.worker.processor.BatchProcessor` validates, dedupes and applies it (through
:func:`models.events.apply_event`) and builds the touched users' lists, dead letters are
delivered, the batch's Redis effects are committed, the lists are published, and the
:class:`~streams.worker.owner.ModelOwner` checkpoints the models and commits Kafka's offsets.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import faust
from faust.types import TP
from faust.worker import Worker
from pydantic import ValidationError

from models import collect_garbage_rarely
from state.store import Fenced, UserConflict
from streams.schemas import DeadLetter, ItemEvent, encode, validation_error_text
from streams.serving.dashboard import register_dashboard
from streams.serving.views import register_views
from streams.settings import Settings
from streams.worker.follow import follow
from streams.worker.publish import send_keyed
from streams.worker.records import BatchOutcome, Record, StateLost
from streams.worker.replication import update_handler, update_headers, update_held
from streams.worker.runtime import WorkerRuntime, explain
from streams.worker.transport import Transport

__all__ = ["WorkerRuntime", "create_app", "faust_app", "faust_worker"]

log = logging.getLogger(__name__)


def use_uvloop() -> str:
    """Run this process's asyncio event loops on uvloop when it is installed (a dependency
    wherever it builds: not on Windows): Faust's consumer, the producer, Redis and the web
    views are many small reads, writes and callbacks a batch, which it runs for less CPU (the
    bench: pipeline +7-9 %, a no-op agent +22-26 %, docs/PERFORMANCE.md). Call it first thing in
    a process that runs a Faust worker, before any loop is made. Returns the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def faust_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings`` (no agents yet)."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        store="memory://",
        # Faust wants a data directory even with in-memory tables; keep it out of the cwd, one
        # per app id and web port (so per worker on a host), reused across restarts.
        datadir=str(
            Path(tempfile.gettempdir()) / f"recstream-{settings.app_id}-{settings.web_port}"
        ),
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=settings.rebalance_timeout,
        broker_heartbeat_interval=max(0.5, settings.rebalance_timeout / 10),
        # Offsets are committed right after each model checkpoint (ModelOwner.maybe_checkpoint),
        # never on Faust's own timer, so Kafka's position never runs ahead of the models.
        broker_commit_interval=10**6,
        broker_commit_every=10**9,
        web_enabled=True,
    )
    # Faust's transport with a short fetch wait: Tansu holds a fetch its whole wait even when
    # records arrive, which made an idle worker see a new event up to 1.5 s late.
    app.transport = Transport(app.conf.broker_consumer, app)
    app.transport.fetch_wait_ms = max(1, round(settings.fetch_wait * 1000))
    return app


def faust_worker(app: faust.App, loglevel: str) -> Worker:
    """Faust's worker for ``app``, quiet, logging at ``loglevel``, without the terminal spinner
    (at a level of ``warn`` or above Faust adds its handler and sets the root logger to DEBUG,
    so every debug call of aiokafka and Faust, several per record sent, built a log record that
    was then dropped), in a process that collects garbage rarely
    (:func:`models.collect_garbage_rarely`)."""
    collect_garbage_rarely()
    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    return worker


def create_app(settings: Settings) -> faust.App:
    """A Faust app wired to ``settings``: agents for interactions and items, HTTP views."""
    rt = WorkerRuntime(settings)
    app = faust_app(settings)
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
    updates = raw_topic("model-updates")

    async def send_dead(dead: list[DeadLetter]) -> None:
        futures = [
            await dlq.send(
                key=d.key.encode() if d.key else None, value=d.model_dump_json().encode()
            )
            for d in dead
        ]
        await asyncio.gather(*futures)  # delivered before the offsets are recorded

    async def apply_batch(records: list[Record]) -> BatchOutcome | None:
        """Process, dead-letter, commit to Redis and publish one batch. Any failure (a Redis
        command refused, a producer error, a model raising outside an event) retries the
        whole batch with backoff, and Kafka's offset stays behind it meanwhile: no record is
        passed over that is neither applied nor dead-lettered. A retried batch is not learned
        twice (the models record what they hold) nor counted twice (Redis holds its markers).
        A user changed meanwhile by another worker: the batch again at once. Fenced (another
        worker applied this partition since): the batch is dropped, ``None``."""
        delay, lost = 0.1, None
        while True:
            try:
                if lost is not None:
                    await rt.rebuild(lost)
                    lost = None
                out = await rt.processor.process(records)
                if out.dead:
                    await send_dead(out.dead)
                await rt.processor.commit(out)
                producer = app.producer._ensure_producer()  # aiokafka's, started with the app
                await send_keyed(
                    producer,
                    recommendations.get_topic_name(),
                    [(uid.encode(), body) for uid, body in out.published.items()],
                )
                # what the models learned, for the other workers: delivered before the batch
                # is acknowledged, so no committed offset runs ahead of it
                sent = await send_keyed(
                    producer,
                    updates.get_topic_name(),
                    [(f"{u['topic']}:{u['partition']}".encode(), encode(u)) for u in out.updates],
                    [update_headers(u) for u in out.updates],
                )
                await asyncio.gather(*sent)
                if rt.stuck is not None:
                    log.warning("batch applied after a retry: %s cleared", rt.stuck)
                rt.stuck = None
                return out
            except asyncio.CancelledError:
                raise
            except StateLost as exc:
                lost = exc  # rebuilt first thing on the next turn, then the batch again
            except UserConflict as exc:
                log.info("%s: the batch again", exc)
            except Fenced as exc:
                rt.fenced += 1
                log.warning("fenced, batch of %d records dropped: %s", len(records), exc)
                return None
            except Exception as exc:
                rt.stuck = f"batch at {records[0].partition}:{records[0].offset}: {explain(exc)}"
                log.exception("batch failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(settings.max_backoff, delay * 2)

    @app.task
    async def start_models() -> None:
        """Restore the newest checkpoint; once the catalogue is caught up too, the worker is
        ready (a restart replays the catalogue from its start, where an item's upsert comes
        before its delete: nothing is served or ranked halfway through). Then learn what the
        other workers' models learn, from where the checkpoint stood in ``model-updates``."""
        await rt.models.restore()
        rt.restored.set()
        await updates.maybe_declare()
        await rt.catalogue_caught_up.wait()
        rt.ready.set()
        handle = update_handler(settings, rt.models)
        positions = rt.models.update_positions
        await follow(
            settings,
            updates.get_topic_name(),
            handle,
            positions,
            stopping=stopping,
            lock=rt.models.lock,
            skip=update_held(rt.models),  # among them this worker's own: not decoded
        )

    @app.task
    async def follow_catalogue() -> None:
        """The whole catalogue on every worker (not split by the group), from the start."""
        await rt.restored.wait()
        await follow(
            settings,
            items.get_topic_name(),
            rt.apply_catalogue,
            {},
            stopping=stopping,
            lock=rt.models.lock,
            caught_up=rt.catalogue_caught_up,
        )

    def stopping() -> bool:
        return bool(app.should_stop)

    @app.agent(interactions, concurrency=1)
    async def process_interactions(stream: faust.StreamT) -> None:
        await rt.ready.wait()
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
                out = await apply_batch(records)
                if out is None:
                    continue
                rt.last_batch_at = time.time()
                rt.metrics.record_batch(
                    out.stats, out.recommendations, out.dead, rt.last_batch_at, out.model_cpu
                )
                await rt.models.maybe_checkpoint(commit_checkpointed)
        finally:
            await asyncio.shield(rt.models.finish())

    async def commit_checkpointed(offsets: Mapping[str, int]) -> None:
        """Commit, of this worker's partitions, the offsets a checkpoint holds (the next to
        read: one past the newest it learned). Faust's ``commit`` takes the acknowledged
        offsets instead, which run ahead of a checkpoint written in the background; its
        ``_commit_offsets`` commits the ones given, after flushing the producer."""
        consumer = app.consumer
        assigned = consumer.assignment()
        wanted = {}
        for key, offset in offsets.items():
            topic, _, partition = key.rpartition(":")
            tp = TP(topic, int(partition))
            if tp in assigned and consumer._should_commit(tp, offset + 1):
                wanted[tp] = offset + 1
        if wanted:
            await consumer._commit_offsets(wanted)

    @app.timer(interval=settings.checkpoint_interval)
    async def checkpoint_between_batches() -> None:
        """Checkpoints start after batches; a worker without batches (idle) finishes here what
        one left: it tries again after a failed checkpoint (so /health clears once Redis takes
        it) and commits the offsets of one written since its last batch."""
        models = rt.models
        if rt.ready.is_set() and (models.error is not None or models.checkpointing is not None):
            await models.maybe_checkpoint(commit_checkpointed)

    @app.agent(items, concurrency=1)
    async def dead_letter_items(stream: faust.StreamT) -> None:
        """Split by the group: each invalid catalogue record is dead-lettered once (every
        worker applies the valid ones, see ``follow_catalogue``)."""
        async for event in stream.events():
            msg = event.message
            try:
                ItemEvent.model_validate_json(msg.value or b"")
            except ValidationError as exc:
                dead = DeadLetter.of(
                    msg.value, validation_error_text(exc), msg.topic, msg.partition, msg.offset
                )
                await send_dead([dead])

    register_views(app, rt)
    register_dashboard(app, rt)
    return app
