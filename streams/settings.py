"""The one settings object, read from ``RECSTREAM_*`` environment variables.

Defaults run the embedded setup (``recstream up``): a broker and Redis on loopback. A bad value
fails at start with a message naming the variable, e.g.::

    RECSTREAM_WEB_PORT: Input should be a valid integer ... (got 'abc')
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models import registry

__all__ = ["TOPICS", "Settings", "SettingsError", "load_settings"]

ENV_PREFIX = "RECSTREAM_"

#: Base names of the topics recstream uses (each behind ``Settings.topic_prefix``).
TOPICS = ("interactions", "items", "recommendations", "interactions.dlq", "model-updates")
_NAME = re.compile(r"^[A-Za-z0-9._-]*$")


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


class Settings(BaseSettings):
    """recstream's settings. Each field is read from ``RECSTREAM_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers as kafka://host:port[;host:port]. `recstream up` "
        "starts an embedded broker unless this is set.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL. `recstream up` starts a Redis of its own unless this is set.",
    )
    web_host: str = Field("127.0.0.1", description="Interface the worker's HTTP server binds.")
    web_port: int = Field(6066, ge=1, le=65535, description="The worker's HTTP port.")
    app_id: str = Field(
        "recstream",
        min_length=1,
        description="Consumer group id and Redis key prefix: two deployments on one Redis and "
        "broker stay apart by using different ids.",
    )
    topic_prefix: str = Field("", description="Prepended to every topic name.")
    partitions: int = Field(
        12,
        ge=1,
        le=1024,
        description="Partitions of the topics recstream creates: the most workers that get "
        "work (a user's events stay on one partition). At least the most workers you will run.",
    )
    k: int = Field(10, ge=1, le=1000, description="Items per published recommendation list.")
    max_k: int = Field(
        100,
        ge=1,
        le=1000,
        description="Largest `k` that GET /recommendations/{user_id} accepts (a larger one is "
        "a 400): a fresh ranking runs on the worker's event loop, so its cost is bounded.",
    )
    thresholds: Annotated[tuple[int, ...], NoDecode] = Field(
        (1, 5, 20),
        description="Interaction counts at which a user moves from cold to warm, active and "
        "established (comma-separated, increasing).",
    )
    sources: Annotated[tuple[str, ...], NoDecode] = Field(
        registry.line_up(),
        description="The candidate sources the worker runs (comma-separated): by default "
        "every source recstream ships but `mf`, which costs a tenth of the CPU per event and "
        "moved no measured list (docs/PERFORMANCE.md); a source every phase leaves out still "
        "learns (e.g. `rating`, which predicts ratings).",
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="Most events per batch.")
    batch_wait: float = Field(
        0.03,
        gt=0,
        le=10,
        description="Seconds a batch waits to fill (latency vs throughput): an idle worker "
        "adds up to it to an event's latency; a busy one gets larger batches, cheaper per "
        "event (a batch has fixed costs), so its queue and latency shrink (0.03 against "
        "0.01: ~8 % less CPU per event and a lower p99 at 400 and 600 events/s, "
        "docs/PERFORMANCE.md).",
    )
    fetch_wait: float = Field(
        0.03,
        gt=0,
        le=10,
        description="Seconds a fetch may wait on the broker for records: the most a worker "
        "that has caught up waits to see a new event on Tansu, which holds a fetch its whole "
        "wait (Kafka answers as records arrive).",
    )
    dedup_ttl: int = Field(
        7 * 24 * 3600, ge=60, description="Seconds an event_id is remembered for deduplication."
    )
    session_gap: float = Field(1800.0, gt=0, description="Idle seconds that end a session.")
    max_skew: float = Field(
        86400.0,
        gt=0,
        description="Seconds an event's timestamp may be ahead of its arrival at the broker; "
        "further ahead (or before 1990) it goes to the dead-letter topic.",
    )
    half_life: float = Field(
        24 * 3600.0, gt=0, description="Popularity half-life in seconds (event time)."
    )
    history: int = Field(500, ge=1, le=100_000, description="Distinct items kept per user.")
    max_backoff: float = Field(
        5.0, gt=0, le=300, description="Longest wait (seconds) between retries of a failed batch."
    )
    checkpoint_interval: float = Field(
        10.0, gt=0, description="Seconds between model checkpoints to Redis."
    )
    rebalance_timeout: float = Field(
        4.0,
        gt=0,
        description="Consumer-group rebalance/session timeout (seconds). Small "
        "values make joins fast on the embedded broker; raise it on busy clusters.",
    )
    log_level: str = Field("info", description="crit|error|warn|info|debug")

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        url = value if "://" in value else f"kafka://{value}"
        scheme, _, hosts = url.partition("://")
        if scheme not in {"kafka", "aiokafka"} or not hosts:
            raise ValueError("expected kafka://host:port[;host:port]")
        for host in hosts.split(";"):
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port, got {host!r}")
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("expected redis://host:port/db")
        return value

    @field_validator("app_id", "topic_prefix")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("only letters, digits, '.', '_' and '-' are allowed")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in {"crit", "error", "warn", "info", "debug"}:
            raise ValueError("expected one of crit|error|warn|info|debug")
        return value

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(int(v) for v in value.replace(" ", "").split(",") if v)
        if isinstance(value, int):
            value = (value,)
        return value

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(v for v in value.replace(" ", "").split(",") if v)
        return value

    @field_validator("sources")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = ",".join(registry.REGISTRY)
        unknown = [v for v in value if v not in registry.REGISTRY]
        if unknown:
            raise ValueError(f"unknown source(s) {','.join(unknown)}; known: {known}")
        if not value:
            raise ValueError(f"expected at least one of {known}")
        fallback = registry.fallback()
        empty = [p for p, _ in registry.PHASES if not set(registry.phase_weights(p)) & set(value)]
        if empty and fallback not in value:
            raise ValueError(
                f"the {'/'.join(empty)} phase weighs none of these sources and the fallback "
                f"({fallback}) is not among them: its users would get empty lists"
            )
        return tuple(dict.fromkeys(value))

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) != 3 or list(value) != sorted(set(value)) or value[0] < 1:
            raise ValueError("expected three increasing counts >= 1, e.g. 1,5,20")
        return value

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker as a kafka-python ``bootstrap_servers`` list."""
        return self.broker.partition("://")[2].split(";")

    def topic(self, name: str) -> str:
        """Full topic name behind the prefix."""
        return f"{self.topic_prefix}{name}"

    def to_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """These settings as ``RECSTREAM_*`` variables (over ``base`` minus any old ones), for
        starting a worker process configured exactly like this object."""
        env = {k: v for k, v in (base or {}).items() if not k.startswith(ENV_PREFIX)}
        for name, value in self.model_dump().items():
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = text
        return env

    def is_set(self, field: str) -> bool:
        """Whether ``field`` came from the environment rather than the default."""
        return field in self.model_fields_set


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise :class:`SettingsError` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            got = err.get("input")
            lines.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']} (got {got!r})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
