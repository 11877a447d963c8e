"""``recstream up`` touches only what it started (issue #14, row 7): with no
``RECSTREAM_REDIS_URL`` it runs its own Redis, never the machine's; a configured Redis is used
as it is and left alone; its temporary folder goes away when it stops, whatever stops it, and
so do the folders of earlier runs that were killed (issue #17, item 7). Its run file lets a
second shell find its broker, Redis and workers (issue #17, item 1); ``--workers N`` runs N
workers in one group (issue #15)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from streams.settings import Settings
from streams.tools.embedded import free_port
from streams.tools.processes import http_json as http
from streams.tools.runfile import read_run_file

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


class Up:
    """``python -m streams.tools.cli up ARGS`` as a real process; its output line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.cli", "up", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line)
        self._q.put(None)

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"up exited before {text!r}:\n{self.out}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout:.0f} s:\n{self.out}")

    def field(self, name: str) -> str:
        """A value of the 'recstream is up' banner, e.g. ``field("redis")``."""
        for line in self.lines:
            words = line.split()
            if len(words) >= 2 and words[0] == name:
                return words[1]
        raise AssertionError(f"no {name!r} in the banner:\n{self.out}")

    def stop(self, timeout: float = 45.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"up did not stop on SIGTERM:\n{self.out}") from None

    def children(self) -> list[str]:
        found = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return found.stdout.split()


def up_env(tmp: Path, **settings: str) -> dict[str, str]:
    """No RECSTREAM_* but ``settings``; temporary files under ``tmp`` (so that what the run
    leaves behind can be seen); the run file beside it, not in the user's folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env.update(
        RECSTREAM_WEB_PORT=str(free_port()),
        RECSTREAM_REBALANCE_TIMEOUT="3",
        RECSTREAM_RUN_FILE=str(tmp.parent / f"{tmp.name}-up.env"),
        PYTHONUNBUFFERED="1",
        TMPDIR=str(tmp),
        **{f"RECSTREAM_{k.upper()}": v for k, v in settings.items()},
    )
    return env


def second_shell(up: dict[str, str]) -> dict[str, str]:
    """Another terminal of the same user: no RECSTREAM_* variable, the same run file."""
    env = {k: v for k, v in up.items() if not k.startswith("RECSTREAM_")}
    env["RECSTREAM_RUN_FILE"] = up["RECSTREAM_RUN_FILE"]
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.tools.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def keys_under(client: redis.Redis, prefix: str) -> dict[bytes, object]:
    """Every key under ``prefix:`` with its value (strings and hashes)."""
    found: dict[bytes, object] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = client.type(key)
        found[key] = client.hgetall(key) if kind == b"hash" else client.get(key)
    return found


def test_up_without_a_configured_redis_runs_its_own_and_never_touches_the_machines(tmp_path):
    machine_url = Settings.model_fields["redis_url"].default
    machine = redis.Redis.from_url(machine_url, socket_connect_timeout=1)
    try:
        machine.ping()
    except (redis.RedisError, OSError):
        pytest.skip(f"no Redis answers at the default {machine_url}")
    app = f"rsup-{uuid.uuid4().hex[:8]}"
    # a running instance's state in the machine's Redis, under this run's app id
    machine.set(f"{app}:sentinel", "keep me")
    machine.hset(f"{app}:offsets", mapping={"interactions:0": 41, "interactions:1": 7})
    machine.set(f"{app}:user:{{u1}}", '{"user_id": "u1", "interactions": 3}')
    machine.set(f"{app}:models", b"a checkpoint")
    before = keys_under(machine, app)
    up = Up(["--demo", "--events", "300", "--rate", "0"], up_env(tmp_path, app_id=app))
    try:
        up.wait_for_line("recstream is up")
        up.wait_for_line("logs")
        own_url = up.field("redis")
        assert own_url != machine_url and "127.0.0.1:6379/" not in own_url, up.out
        up.wait_for_line("demo done: 300 events published", timeout=90)
        own = redis.Redis.from_url(own_url)
        applied = {k.decode(): int(v) for k, v in own.hgetall(f"{app}:offsets").items()}
        deadline = time.monotonic() + 30
        while sum(o + 1 for o in applied.values()) < 300 and time.monotonic() < deadline:
            time.sleep(0.3)
            applied = {k.decode(): int(v) for k, v in own.hgetall(f"{app}:offsets").items()}
        assert sum(o + 1 for o in applied.values()) == 300, applied
        assert any(own.scan_iter(match=f"{app}:user:*")), "no user state in up's own Redis"
        own.close()
    finally:
        code = up.stop()
        after = keys_under(machine, app)
        machine.delete(*[f"{app}:{k}" for k in ("sentinel", "offsets", "user:{u1}", "models")])
        leftover = list(machine.scan_iter(match=f"{app}:*"))
        if leftover:
            machine.delete(*leftover)
    assert after == before, "up changed the machine's Redis"
    assert code == 0, up.out
    assert not list(tmp_path.iterdir()), f"left in TMPDIR: {list(tmp_path.iterdir())}"


def dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_up_leaves_a_configured_redis_alone_and_cleans_up_when_its_terminal_closes(
    tmp_path, redis_url, app_id
):
    configured = redis.Redis.from_url(redis_url)
    configured.set(f"{app_id}:sentinel", "keep me")
    configured.hset(f"{app_id}:offsets", mapping={"interactions:0": 41})
    # what earlier runs left: one killed outright (SIGKILL: no chance to clean up), one kept
    # on purpose for its logs (a worker failed), one that is not up's
    killed, kept, other = (tmp_path / n for n in ("recstream-up-k1", "recstream-up-f1", "x"))
    for folder in (killed, kept, other):
        folder.mkdir()
        (folder / "worker-1.log").write_text("...")
    for folder in (killed, kept):
        (folder / "up.pid").write_text(str(dead_pid()))
    (kept / "KEPT").touch()
    up = Up([], up_env(tmp_path, app_id=app_id, redis_url=redis_url))
    try:
        up.wait_for_line("Ctrl-C stops everything")
        assert up.field("redis") == redis_url, up.out
        assert "removed 1 folder(s) of earlier runs that were killed" in up.out, up.out
        assert not killed.exists() and kept.exists() and other.exists()
        logs = Path(up.field("logs"))
        assert logs.is_dir() and logs.parent == tmp_path, up.out
        children = up.children()
        assert children, "expected the broker and the worker as child processes"
        up.proc.send_signal(signal.SIGHUP)  # the terminal it ran in was closed
        code = up.proc.wait(45)
    finally:
        up.stop()
    assert code == 0, up.out
    assert not logs.exists(), f"the run's folder {logs} is still there"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.name, other.name])
    assert configured.get(f"{app_id}:sentinel") == b"keep me"
    assert configured.hgetall(f"{app_id}:offsets") == {b"interactions:0": b"41"}
    alive = [p for p in children if os.path.exists(f"/proc/{p}")]
    assert not alive, f"processes left running: {alive}"


def test_a_second_shell_finds_up_and_its_workers_through_the_run_file(tmp_path):
    # issue #17, item 1 (a second shell's replay could not see the workers' offsets and
    # flooded) and issue #15 (`up --workers N`): two workers in one group on 12 partitions
    up_tmp = tmp_path / "tmp"
    up_tmp.mkdir()
    env = up_env(up_tmp)
    run_file = Path(env["RECSTREAM_RUN_FILE"])
    up = Up(["--workers", "2"], env)
    try:
        up.wait_for_line("Ctrl-C stops everything", timeout=120)
        workers = [ln.split()[1] for ln in up.lines if ln.split()[:1] == ["worker"]]
        assert len(set(workers)) == 2, up.out
        assert f"live     {workers[0]}/dashboard" in up.out, up.out
        exports = [ln for ln in up.lines if "export RECSTREAM_BROKER=" in ln]
        assert exports and f"RECSTREAM_REDIS_URL={up.field('redis')}" in exports[0], up.out
        assert read_run_file(run_file) == {
            "RECSTREAM_BROKER": up.field("broker"),
            "RECSTREAM_REDIS_URL": up.field("redis"),
            "RECSTREAM_WEB_PORT": workers[0].rsplit(":", 1)[1],
        }

        def split() -> list[set[str]]:
            return [
                {p for p in http(f"{w}/health")[1]["assigned_partitions"] if "interactions:" in p}
                for w in workers
            ]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = split()
            if all(parts) and not parts[0] & parts[1] and len(parts[0] | parts[1]) == 12:
                break
            time.sleep(0.5)
        assert all(parts) and len(parts[0] | parts[1]) == 12, parts

        shell = second_shell(env)
        for example, fmt in (("events.csv", "csv"), ("events.jsonl", "jsonl")):
            done = cli(shell, "replay", str(EXAMPLES / example), "--format", fmt)
            assert done.returncode == 0, done.stderr
            assert "paced to the workers" in done.stdout, done.stdout
            assert re.search(
                r"the workers (have processed every event published|are \d+ events behind: "
                r"about)",
                done.stdout,
            ), done.stdout
        for user, count in (("alice", 4), ("erin", 4), ("dave", 2), ("grace", 2)):
            deadline = time.monotonic() + 30
            while http(f"{workers[1]}/users/{user}")[1]["interactions"] != count:
                assert time.monotonic() < deadline, f"{user}: {http(f'{workers[1]}/users/{user}')}"
                time.sleep(0.3)
        tail = cli(shell, "tail", "--from-beginning", "--user", "alice", "--count", "1")
        assert tail.returncode == 0 and " alice  " in tail.stdout, tail.stdout + tail.stderr
    finally:
        code = up.stop()
    assert code == 0, up.out
    assert not run_file.exists(), "the run file outlived its up"
    assert not list(up_tmp.iterdir()), f"left in TMPDIR: {list(up_tmp.iterdir())}"
