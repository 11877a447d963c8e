"""The run file of ``recstream up`` (issue #17, item 1): where it is, what it holds, and that
the other commands take from it only what no variable sets, and only while that ``up`` runs."""

from __future__ import annotations

import os
import subprocess
import sys

from streams.tools import runfile


def test_the_run_file_is_where_the_variable_says_else_in_the_users_runtime_or_cache_folder(
    tmp_path,
):
    env = {"HOME": str(tmp_path / "home")}
    assert runfile.run_file_path(env) == tmp_path / "home" / ".cache" / "recstream" / "up.env"
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    assert runfile.run_file_path(env) == tmp_path / "run" / "recstream" / "up.env"
    env["RECSTREAM_RUN_FILE"] = str(tmp_path / "mine.env")
    assert runfile.run_file_path(env) == tmp_path / "mine.env"


def test_a_run_file_round_trips_is_sourceable_and_names_an_export_line(tmp_path):
    path = tmp_path / "sub" / "up.env"
    values = {
        "RECSTREAM_BROKER": "kafka://127.0.0.1:9092",
        "RECSTREAM_REDIS_URL": "redis://127.0.0.1:40001/0",
        "RECSTREAM_WEB_PORT": "6066",
    }
    runfile.write_run_file(path, values, pid=os.getpid())
    assert runfile.read_run_file(path) == values
    line = runfile.export_line(values)
    assert line == (
        "export RECSTREAM_BROKER=kafka://127.0.0.1:9092 "
        "RECSTREAM_REDIS_URL=redis://127.0.0.1:40001/0 RECSTREAM_WEB_PORT=6066"
    )
    shown = subprocess.run(
        ["sh", "-c", f". {path} && echo $RECSTREAM_REDIS_URL"], capture_output=True, text=True
    )
    assert shown.stdout.strip() == "redis://127.0.0.1:40001/0"


def test_the_run_file_of_an_up_that_is_gone_is_ignored_and_only_its_owner_removes_it(tmp_path):
    path = tmp_path / "up.env"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runfile.write_run_file(path, {"RECSTREAM_BROKER": "kafka://127.0.0.1:1"}, pid=gone.pid)
    assert runfile.read_run_file(path) is None
    runfile.write_run_file(path, {"RECSTREAM_BROKER": "kafka://127.0.0.1:2"}, pid=os.getpid())
    runfile.remove_run_file(path, pid=os.getpid() + 1)  # another up's: stays
    assert path.exists()
    runfile.remove_run_file(path, pid=os.getpid())
    assert not path.exists()


def test_variables_win_over_the_run_file_and_each_value_says_where_it_came_from(
    tmp_path, monkeypatch
):
    path = tmp_path / "up.env"
    runfile.write_run_file(
        path,
        {
            "RECSTREAM_BROKER": "kafka://127.0.0.1:9999",
            "RECSTREAM_REDIS_URL": "redis://127.0.0.1:40001/0",
            "RECSTREAM_WEB_PORT": "6067",
        },
        pid=os.getpid(),
    )
    for name in [k for k in os.environ if k.startswith("RECSTREAM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RECSTREAM_RUN_FILE", str(path))
    monkeypatch.setenv("RECSTREAM_REDIS_URL", "redis://10.0.0.1:6379/0")
    loaded = runfile.load_cli_settings(skip=("web_port",))
    assert loaded.settings.broker == "kafka://127.0.0.1:9999"
    assert loaded.settings.redis_url == "redis://10.0.0.1:6379/0"
    assert loaded.settings.web_port == 6066  # skipped: a second worker needs its own port
    assert loaded.origin("broker") == f"from {path}, the run file of `recstream up`"
    assert loaded.origin("redis_url") == "RECSTREAM_REDIS_URL"
    assert loaded.origin("app_id") == "the default; RECSTREAM_APP_ID is not set"
