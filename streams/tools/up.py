"""``recstream up``: broker, Redis and a worker on this machine, optionally with demo traffic."""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tqdm import tqdm

from state.store import AppliedOffsetsReader
from streams.settings import Settings, load_settings
from streams.tools.demo import DemoShop
from streams.tools.embedded import Service, free_port, start_redis, start_tansu
from streams.tools.kafka_io import consume, ensure_topics, wait_for_broker
from streams.tools.processes import (
    port_free,
    redis_answers,
    start_worker,
    stop_process,
    wait_healthy,
)
from streams.tools.replay import publish_events, publish_items, worker_pace

__all__ = ["run_up"]


def _follow(settings: Settings, users: set[str], stop: threading.Event) -> None:
    """Print followed users' lists whenever they change."""
    last: dict[str, list[str]] = {}
    for rec in consume(settings, "recommendations"):
        if stop.is_set():
            return
        if rec is None:
            continue
        msg = json.loads(rec.value)
        uid = msg["user_id"]
        items = [i["item_id"] for i in msg["items"]]
        if uid not in users or last.get(uid) == items[:5]:
            continue
        last[uid] = items[:5]
        shown = ", ".join(f"{i['item_id']}({'+'.join(i['sources'])})" for i in msg["items"][:4])
        tqdm.write(
            f"  {uid} [{msg['strategy']}, {msg['interactions']} events, "
            f"{msg.get('latency_ms') or 0:.0f} ms] -> {shown}"
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _kill_all(procs: list[subprocess.Popen], signum: int, frame: object) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


def _applied_offsets(url: str, app_id: str) -> dict[str, int]:
    """The applied offsets a configured Redis holds for ``app_id`` (read only)."""
    reader = AppliedOffsetsReader(url, app_id)
    try:
        return reader()
    finally:
        reader.close()


def run_up(demo: bool, events: int, rate: float | None, max_lag: int | None = None) -> int:
    """Start everything; with ``demo``, publish ``events`` demo events at most ``rate`` a
    second and no faster than the worker keeps up with (``max_lag`` unprocessed events;
    default: adapted to keep each event's wait about 0.5 s; 0: no pacing).

    Touches only what it started: without ``RECSTREAM_REDIS_URL`` it runs a Redis of its own
    (data and append-only file in the run's folder, a free port), never the machine's; a
    configured Redis is used as it is (its state must match the broker's log) and nothing in
    it is deleted. The run's folder (logs, Redis data) is removed on exit, unless something
    failed: then it is kept for its logs."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children on `kill` too, not just ^C
    settings = load_settings()
    env = {k: v for k, v in os.environ.items()}
    services: list[Service] = []
    workdir = Path(tempfile.mkdtemp(prefix="recstream-up-"))
    worker: subprocess.Popen | None = None
    stop = threading.Event()
    keep = True  # the run's folder, for its logs; cleared when everything went as planned
    try:
        print(f"this run's folder (logs, Redis data): {workdir}", flush=True)
        fresh_broker = not settings.is_set("broker")
        if fresh_broker:
            print("starting the embedded broker (Tansu) ...", flush=True)
            # on the default address when it is free, so `recstream tail`/`replay` in another
            # terminal find it without settings
            port = int(settings.bootstrap_servers[0].rpartition(":")[2])
            services.append(start_tansu(port if port_free("127.0.0.1", port) else None, workdir))
            env["RECSTREAM_BROKER"] = services[-1].url
        if settings.is_set("redis_url"):
            # used as it is: never cleared, since up did not start it
            if not redis_answers(settings.redis_url):
                print(
                    f"RECSTREAM_REDIS_URL={settings.redis_url}: no Redis answers there. Start "
                    "it, or unset RECSTREAM_REDIS_URL and up runs a Redis of its own.",
                    flush=True,
                )
                keep = False
                return 2
            if fresh_broker and _applied_offsets(settings.redis_url, settings.app_id):
                print(
                    f"warning: {settings.redis_url} holds state under '{settings.app_id}:' "
                    "from another broker's log, and this broker's log is new: its users, "
                    "offsets and models are kept and built on. For a clean start use another "
                    "RECSTREAM_APP_ID (or clear those keys yourself).",
                    flush=True,
                )
        else:
            print("starting a Redis of its own (data in the run's folder) ...", flush=True)
            services.append(start_redis(workdir=workdir, persist=True))
            env["RECSTREAM_REDIS_URL"] = services[-1].url
        if not settings.is_set("web_port") and not port_free(settings.web_host, settings.web_port):
            env["RECSTREAM_WEB_PORT"] = str(free_port())
        os.environ.update(env)
        settings = load_settings()
        wait_for_broker(settings.bootstrap_servers)
        topics = ensure_topics(settings)
        log = workdir / "worker.log"
        # the worker's temporary files (Faust's data directory) go in the run's folder too
        (workdir / "tmp").mkdir()
        worker = start_worker({**env, "TMPDIR": str(workdir / "tmp")}, log)
        base = f"http://{settings.web_host}:{settings.web_port}"
        print("starting the worker ...", flush=True)
        wait_healthy(base, worker, log)
        started = {svc.name for svc in services}
        print(
            f"\nrecstream is up\n"
            f"  broker   {settings.broker}  "
            f"({'started here' if 'tansu' in started else 'RECSTREAM_BROKER'})\n"
            f"  redis    {settings.redis_url}  "
            f"({'started here' if 'redis' in started else 'RECSTREAM_REDIS_URL, used as it is'})\n"
            f"  topics   {', '.join(topics)}\n  live     {base}/dashboard\n"
            f"  http     {base}/health  "
            f"{base}/recommendations/<user_id>  {base}/users/<user_id>\n"
            f"  logs     {workdir}  (removed on exit)\nCtrl-C stops everything.\n",
            flush=True,
        )
        if demo:
            shop = DemoShop()
            publish_items(settings, shop.items)
            print(f"published {len(shop.items)} catalogue items to {settings.topic('items')}")
            follow = {f"user{n:04d}" for n in (1, shop.n_users // 4, shop.n_users // 2)}
            threading.Thread(target=_follow, args=(settings, follow, stop), daemon=True).start()
            running = worker  # bound for the lambdas (mypy: not None here)
            pace = None
            if max_lag != 0:  # paced to the worker: lists stay fresh instead of queueing
                pace = worker_pace(settings, max_lag, alive=lambda: running.poll() is None)
                cap = f"at most {rate:g} events/s, " if rate else ""
                print(
                    f"pacing the demo to the worker: {cap}no more than it keeps up with "
                    "(lag = published, not yet processed / the bound; wait = send to processed)",
                    flush=True,
                )
            try:
                sent = publish_events(
                    settings,
                    itertools.takewhile(lambda _: running.poll() is None, shop.events(events)),
                    total=events,
                    rate=rate,
                    desc="demo events",
                    pace=pace,
                )
            finally:
                if pace is not None:
                    pace.close()
            time.sleep(2.0)
            print(f"\ndemo done: {sent} events published. Try: curl {base}/users/user0000")
            print("still serving; Ctrl-C stops everything.", flush=True)
        while worker.poll() is None:
            time.sleep(0.5)
        print(f"worker exited with code {worker.returncode}", flush=True)
        return worker.returncode or 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        keep = False
        return 0
    finally:
        # A second Ctrl-C or SIGTERM while stopping kills the children at once; the folder
        # is still cleaned up.
        procs = [svc.proc for svc in services] + ([worker] if worker is not None else [])
        hurry = functools.partial(_kill_all, procs)
        signal.signal(signal.SIGINT, hurry)
        signal.signal(signal.SIGTERM, hurry)
        stop.set()
        if worker is not None:
            stop_process(worker)
        for svc in reversed(services):
            svc.stop()
        if keep:
            print(f"logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
