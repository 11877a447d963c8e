"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_parses_and_has_kafka_redis_and_a_worker_built_here():
    services = compose()["services"]
    assert {"kafka", "redis", "worker"} <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["worker"]["build"] == "."
    assert (ROOT / "Dockerfile").exists()


def test_compose_worker_environment_names_are_real_settings_with_valid_values():
    env = compose()["services"]["worker"]["environment"]
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown = set(env) - fields
    assert not unknown, f"compose sets variables the settings object does not read: {unknown}"
    values = {k[len(ENV_PREFIX) :].lower(): str(v) for k, v in env.items()}
    settings = Settings(**values)
    assert settings.bootstrap_servers == ["kafka:9092"]
    assert settings.redis_url.startswith("redis://redis:")


def test_compose_worker_port_matches_the_web_port_setting():
    worker = compose()["services"]["worker"]
    port = worker["environment"]["RECSTREAM_WEB_PORT"]
    assert any(str(p).split(":")[-1] == port for p in worker["ports"])
    assert f"EXPOSE {port}" in (ROOT / "Dockerfile").read_text()


def test_compose_partitions_leave_room_for_workers_like_the_default():
    # issue #15: a third worker on the old 4 (compose: 8) partitions could get none; the
    # broker's auto-created topics get the same count as the ones recstream creates
    services = compose()["services"]
    default = Settings.model_fields["partitions"].default
    assert int(services["worker"]["environment"]["RECSTREAM_PARTITIONS"]) >= default
    worker = services["worker"]["environment"]["RECSTREAM_PARTITIONS"]
    assert services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"] == worker


def test_compose_worker_can_be_scaled():
    """`docker compose up --scale worker=N`: N containers of one service need no fixed name
    and no fixed host port (each gets its own), and share one consumer group (app id)."""
    worker = compose()["services"]["worker"]
    assert "container_name" not in worker
    assert all(":" not in str(p) for p in worker["ports"]), worker["ports"]
    assert worker["environment"]["RECSTREAM_APP_ID"]  # one group for every replica
