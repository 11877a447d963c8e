"""Before a command starts: does the broker answer, does Redis? Within a few seconds, one line
that names the address tried, where it came from and what to do; the CLI exits with code 2.

A TCP connect tells a closed port at once (most of the time: nothing started); a port that
accepts is then asked for the broker's metadata, bounded in time too.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

from kafka.errors import KafkaError, NoBrokersAvailable

from streams.tools.kafka_io import list_topics
from streams.tools.processes import port_free, redis_answers
from streams.tools.runfile import CliSettings

__all__ = ["Unreachable", "require_broker", "require_redis", "require_web_port"]


class Unreachable(RuntimeError):
    """A service a command needs does not answer; the message is the one line to print."""


def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def broker_answers(servers: list[str], timeout: float = 4.0) -> bool:
    """Whether a Kafka broker answers a metadata request at one of ``servers`` within about
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    listening = []
    for server in servers:
        host, _, port = server.rpartition(":")
        left = max(0.2, min(2.0, deadline - time.monotonic()))
        if _connects(host.strip("[]"), int(port), left):
            listening.append(server)
    if not listening:
        return False
    try:
        list_topics(listening, timeout_ms=int(max(500, (deadline - time.monotonic()) * 1000)))
        return True
    except (KafkaError, NoBrokersAvailable, OSError, ValueError):
        return False


def require_broker(cli: CliSettings) -> None:
    """Raise :class:`Unreachable` unless the configured broker answers."""
    servers = cli.settings.bootstrap_servers
    if broker_answers(servers):
        return
    raise Unreachable(
        f"no Kafka broker answers at {';'.join(servers)} ({cli.origin('broker')}): start one "
        "with `recstream up` in another shell, or set RECSTREAM_BROKER=kafka://host:port to "
        "yours"
    )


def require_redis(cli: CliSettings, why: str = "") -> None:
    """Raise :class:`Unreachable` unless the configured Redis answers (``why``: what the
    command needs it for, appended to the message)."""
    url = cli.settings.redis_url
    if redis_answers(url):
        return
    where = urlparse(url)
    address = f"{where.hostname}:{where.port or 6379}" if where.hostname else url
    raise Unreachable(
        f"no Redis answers at {address} ({cli.origin('redis_url')}): start everything with "
        f"`recstream up` in another shell, or set RECSTREAM_REDIS_URL=redis://host:port/0 to "
        f"yours{why}"
    )


def require_web_port(cli: CliSettings) -> int | None:
    """The worker's web port: as configured when it is free; another free port when the
    default is taken (e.g. by the worker of ``recstream up``), returned so the caller can say
    so; :class:`Unreachable` when a port set on purpose is taken."""
    from streams.tools.embedded import free_port

    settings = cli.settings
    if port_free(settings.web_host, settings.web_port):
        return None
    if settings.is_set("web_port"):
        raise Unreachable(
            f"port {settings.web_port} on {settings.web_host} is in use "
            f"({cli.origin('web_port')}): set RECSTREAM_WEB_PORT to a free port"
        )
    return free_port()
