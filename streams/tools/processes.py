"""Process helpers of the embedded runtime: probe Redis and ports, start and stop a worker
process, wait for its ``/health``. Used by ``recstream up``, ``evaluate --through-kafka``,
the benchmark script and the test fixtures."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

__all__ = [
    "SIGNALS",
    "http_json",
    "interrupt",
    "interrupted_by_signals",
    "port_free",
    "proc_stat",
    "redis_answers",
    "start_worker",
    "stop_process",
    "wait_healthy",
]


#: The signals that stop a tool as ^C does: also `kill` and its terminal closing.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def interrupt(signum: int, frame: object) -> None:
    """A handler of :data:`SIGNALS`: raise ``KeyboardInterrupt``, as ^C does, so that the tool's
    ``finally`` stops what it started. Ignores them after that, until the cleanup sets its own
    handlers: a second signal must not cut it short."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """Within: every one of :data:`SIGNALS` is :func:`interrupt` (Python's default for SIGTERM
    and SIGHUP ends the process at once, leaving its broker, Redis and workers running);
    the handlers are restored after."""
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (``[11]`` user CPU ticks,
    ``[12]`` system, ``[19]`` the start time), or ``[]`` where it cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (as the worker's HTTP server does,
    with SO_REUSEADDR: a port a killed process left in TIME_WAIT is free)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


def http_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_healthy(base: str, worker: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"worker exited with code {worker.returncode}:\n{tail}")
        try:
            status, body = http_json(f"{base}/health")
            if status == 200 and body.get("assigned_partitions"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"worker not healthy within {timeout:.0f}s; see {log}")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.tools.cli", "worker"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
