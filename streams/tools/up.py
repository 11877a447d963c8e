"""``recstream up``: broker, Redis and workers on this machine, optionally with demo traffic.

Touches only what it started: without ``RECSTREAM_REDIS_URL`` it runs a Redis of its own
(data and append-only file in the run's folder, a free port), never the machine's; a
configured Redis is used as it is and nothing in it is deleted. ``--workers N`` runs N worker
processes in one consumer group, each with its own web port. Where everything is goes to the
run file (:mod:`streams.tools.runfile`) that the other commands read, and an ``export`` line
is printed for shells that prefer variables.

The run's folder (``$TMPDIR/recstream-up-*``: logs, Redis data, the workers' temporary files)
is removed on exit, whichever way it stops (Ctrl-C, SIGTERM, the terminal closing); it is
kept, and named, only when a process it started failed. Folders of earlier runs that were
killed outright (no chance to clean up) are removed at the next start.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from state.store import AppliedOffsetsReader
from streams.settings import ENV_PREFIX, Settings, load_settings
from streams.tools.embedded import Service, free_port, start_redis, start_tansu
from streams.tools.kafka_io import ensure_topics, wait_for_broker
from streams.tools.processes import (
    SIGNALS,
    interrupt,
    port_free,
    redis_answers,
    start_worker,
    stop_process,
    wait_healthy,
)
from streams.tools.runfile import export_line, remove_run_file, run_file_path, write_run_file

__all__ = ["remove_stale_folders", "run_up"]

PREFIX = "recstream-up-"
PID_FILE = "up.pid"  # in the run's folder: whose it is
KEPT = "KEPT"  # in the run's folder: kept on purpose (something failed), not stale


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


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def remove_stale_folders(tmp: Path) -> list[Path]:
    """Remove the folders of earlier runs in ``tmp`` whose ``up`` is gone without cleaning up
    (killed outright) and that were not kept on purpose; return them."""
    removed = []
    for folder in tmp.glob(f"{PREFIX}*"):
        pid_file = folder / PID_FILE
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue  # not ours to judge (another version's, or being created)
        if not (folder / KEPT).exists() and _gone(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class Workers:
    """``n`` worker processes in one group; the first on the configured web port when free."""

    def __init__(self, settings: Settings, env: dict[str, str], workdir: Path, n: int) -> None:
        first = settings.web_port
        if not settings.is_set("web_port") and not port_free(settings.web_host, first):
            first = free_port()
        self.ports = [first] + [free_port() for _ in range(n - 1)]
        self.logs = [workdir / f"worker-{i}.log" for i in range(1, n + 1)]
        self.host = settings.web_host
        (workdir / "tmp").mkdir(exist_ok=True)  # the workers' temporary files (Faust's data)
        self.procs = [
            start_worker(
                {**env, "RECSTREAM_WEB_PORT": str(port), "TMPDIR": str(workdir / "tmp")}, log
            )
            for port, log in zip(self.ports, self.logs, strict=True)
        ]

    @property
    def bases(self) -> list[str]:
        return [f"http://{self.host}:{port}" for port in self.ports]

    def wait_healthy(self) -> None:
        for base, proc, log in zip(self.bases, self.procs, self.logs, strict=True):
            wait_healthy(base, proc, log)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def exited(self) -> tuple[int, int] | None:
        """(1-based number, exit code) of the first worker that exited, if any."""
        for i, proc in enumerate(self.procs, 1):
            if proc.poll() is not None:
                return i, proc.returncode
        return None

    def stop(self) -> None:
        for proc in self.procs:  # all at once: a group stops faster than one by one
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            stop_process(proc)


def _banner(
    settings: Settings,
    services: list[Service],
    topics: list[str],
    workers: Workers,
    workdir: Path,
    run_file: Path,
    exports: dict[str, str],
) -> str:
    started = {svc.name for svc in services}
    base = workers.bases[0]
    n = len(workers.procs)
    lines = [
        "",
        "recstream is up",
        f"  broker   {settings.broker}  "
        f"({'started here' if 'tansu' in started else 'RECSTREAM_BROKER'})",
        f"  redis    {settings.redis_url}  "
        f"({'started here' if 'redis' in started else 'RECSTREAM_REDIS_URL, used as it is'})",
        f"  topics   {', '.join(topics)}  ({settings.partitions} partitions each)",
    ]
    for i, worker_base in enumerate(workers.bases, 1):
        group = f"  ({i} of {n} in group {settings.app_id})" if n > 1 else ""
        lines.append(f"  worker   {worker_base}{group}")
    lines += [
        f"  live     {base}/dashboard",
        f"  http     {base}/health  {base}/recommendations/<user_id>  {base}/users/<user_id>",
        f"  logs     {workdir}  (removed on exit)",
        f"  run file {run_file}  (recstream replay/tail/worker in another shell read it)",
        f"  or set   {export_line(exports)}",
    ]
    if n > settings.partitions:
        lines.append(
            f"  note     {n} workers, {settings.partitions} partitions: "
            f"{n - settings.partitions} get none (RECSTREAM_PARTITIONS)"
        )
    lines += ["Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def run_up(
    demo: bool,
    events: int,
    rate: float | None,
    max_lag: int | None = None,
    workers: int = 1,
) -> int:
    """Start everything; with ``demo``, publish ``events`` demo events at most ``rate`` a
    second and no faster than the workers keep up with (``max_lag`` unprocessed events;
    default: adapted to keep each event's wait about 0.5 s; 0: no pacing)."""
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:  # stop the children on `kill` and a closed terminal too, not just ^C
        signal.signal(sig, interrupt)
    settings = load_settings()
    env = dict(os.environ)
    services: list[Service] = []
    tmp = Path(tempfile.gettempdir())
    stale = remove_stale_folders(tmp)
    workdir = Path(tempfile.mkdtemp(prefix=PREFIX))
    (workdir / PID_FILE).write_text(str(os.getpid()))
    group: Workers | None = None
    run_file = run_file_path()
    keep = True  # the run's folder, for its logs; cleared when everything went as planned
    try:
        if stale:
            print(f"removed {len(stale)} folder(s) of earlier runs that were killed", flush=True)
        print(f"this run's folder (logs, Redis data): {workdir}", flush=True)
        fresh_broker = not settings.is_set("broker")
        if fresh_broker:
            print("starting the embedded broker (Tansu) ...", flush=True)
            # on the default address when it is free, so that other shells find it even
            # without the run file
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
        os.environ.update(env)
        settings = load_settings()
        wait_for_broker(settings.bootstrap_servers)
        topics = ensure_topics(settings)
        print(f"starting {workers} worker{'s' if workers > 1 else ''} ...", flush=True)
        group = Workers(settings, env, workdir, workers)
        group.wait_healthy()
        exports = {
            f"{ENV_PREFIX}BROKER": settings.broker,
            f"{ENV_PREFIX}REDIS_URL": settings.redis_url,
            f"{ENV_PREFIX}WEB_PORT": str(group.ports[0]),
        }
        for name in ("app_id", "topic_prefix", "partitions"):
            if settings.is_set(name):
                exports[f"{ENV_PREFIX}{name.upper()}"] = str(getattr(settings, name))
        write_run_file(run_file, exports, os.getpid())
        print(_banner(settings, services, topics, group, workdir, run_file, exports), flush=True)
        if demo:
            from streams.tools.demo_run import run_demo

            run_demo(settings, group.bases, group.alive, events, rate, max_lag)
        while group.alive():
            time.sleep(0.5)
        number, code = group.exited() or (0, 1)
        print(f"worker {number} exited with code {code}; stopping everything", flush=True)
        return code or 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        keep = False
        return 0
    finally:
        # A second Ctrl-C or SIGTERM while stopping kills the children at once; the folder
        # is still cleaned up.
        procs = [svc.proc for svc in services] + (group.procs if group is not None else [])
        hurry = functools.partial(_kill_all, procs)
        for sig in SIGNALS:
            signal.signal(sig, hurry)
        remove_run_file(run_file, os.getpid())
        if group is not None:
            group.stop()
        for svc in reversed(services):
            svc.stop()
        if keep:
            (workdir / KEPT).touch()
            print(f"logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
