from __future__ import annotations

import pytest

from streams.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("RECSTREAM_"):
            monkeypatch.delenv(key)


def test_defaults_run_the_embedded_setup():
    s = load_settings()
    assert s.web_port == 6066 and s.app_id == "recstream" and s.topic_prefix == ""
    assert s.bootstrap_servers == ["127.0.0.1:9092"]
    assert not s.is_set("broker")


def test_values_come_from_recstream_variables(monkeypatch):
    monkeypatch.setenv("RECSTREAM_BROKER", "kafka://h1:9093;h2:9094")
    monkeypatch.setenv("RECSTREAM_TOPIC_PREFIX", "shop.")
    monkeypatch.setenv("RECSTREAM_THRESHOLDS", "2, 6,30")
    s = load_settings()
    assert s.bootstrap_servers == ["h1:9093", "h2:9094"] and s.is_set("broker")
    assert s.topic("interactions") == "shop.interactions"
    assert s.thresholds == (2, 6, 30)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("RECSTREAM_WEB_PORT", "abc"),
        ("RECSTREAM_WEB_PORT", "70000"),
        ("RECSTREAM_BROKER", "http://x:1"),
        ("RECSTREAM_BROKER", "kafka://nohost"),
        ("RECSTREAM_REDIS_URL", "mysql://x"),
        ("RECSTREAM_APP_ID", "bad id!"),
        ("RECSTREAM_THRESHOLDS", "5,1,20"),
        ("RECSTREAM_SOURCES", "cf,nope"),
        ("RECSTREAM_SOURCES", " , "),
        ("RECSTREAM_SOURCES", "cf,ease"),  # nothing for a user's first event, no fallback
        ("RECSTREAM_LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value) and repr(value) in str(err.value)


def test_the_worker_runs_the_default_line_up_or_the_sources_named(monkeypatch):
    from models import registry
    from streams.worker.owner import ModelOwner

    default = load_settings()
    assert default.sources == registry.line_up() and "mf" not in default.sources
    monkeypatch.setenv("RECSTREAM_SOURCES", "cohort,cf")  # a source for every phase
    assert load_settings().sources == ("cohort", "cf")
    monkeypatch.setenv("RECSTREAM_SOURCES", "mf, popularity,cf,mf")
    chosen = load_settings()
    assert chosen.sources == ("mf", "popularity", "cf")
    assert load_settings(**_env_of(chosen)).sources == chosen.sources  # as a worker gets it
    owner = ModelOwner.from_settings(chosen, store=None, worker="w")  # type: ignore[arg-type]
    assert list(owner.engine.sources) == ["popularity", "cf", "mf"]  # in line-up order
    assert owner.engine.fallback == "popularity"


def _env_of(settings):
    return {
        k.removeprefix("RECSTREAM_").lower(): v
        for k, v in settings.to_env().items()
        if k.startswith("RECSTREAM_")
    }


def test_the_cli_reports_a_bad_setting_and_exits_2(monkeypatch, capsys):
    from streams.tools.cli import main

    monkeypatch.setenv("RECSTREAM_WEB_PORT", "-1")
    assert main(["worker"]) == 2
    assert "RECSTREAM_WEB_PORT" in capsys.readouterr().err
