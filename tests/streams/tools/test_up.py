"""``recstream up`` touches only what it started (issue #14, row 7): with no
``RECSTREAM_REDIS_URL`` it runs its own Redis, never the machine's; a configured Redis is used
as it is and left alone; its temporary folder goes away when it stops."""

from __future__ import annotations

import os
import queue
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

pytestmark = pytest.mark.integration


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
    leaves behind can be seen)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env.update(
        RECSTREAM_WEB_PORT=str(free_port()),
        RECSTREAM_REBALANCE_TIMEOUT="3",
        PYTHONUNBUFFERED="1",
        TMPDIR=str(tmp),
        **{f"RECSTREAM_{k.upper()}": v for k, v in settings.items()},
    )
    return env


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
        up.stop()
        after = keys_under(machine, app)
        machine.delete(*[f"{app}:{k}" for k in ("sentinel", "offsets", "user:{u1}", "models")])
        leftover = list(machine.scan_iter(match=f"{app}:*"))
        if leftover:
            machine.delete(*leftover)
    assert after == before, "up changed the machine's Redis"


def test_up_leaves_a_configured_redis_alone_and_removes_its_folder_on_sigterm(
    tmp_path, redis_url, app_id
):
    configured = redis.Redis.from_url(redis_url)
    configured.set(f"{app_id}:sentinel", "keep me")
    configured.hset(f"{app_id}:offsets", mapping={"interactions:0": 41})
    up = Up([], up_env(tmp_path, app_id=app_id, redis_url=redis_url))
    try:
        up.wait_for_line("Ctrl-C stops everything")
        assert up.field("redis") == redis_url, up.out
        logs = Path(up.field("logs"))
        assert logs.is_dir() and logs.parent == tmp_path, up.out
        children = up.children()
        assert children, "expected the broker and the worker as child processes"
    finally:
        code = up.stop()
    assert code == 0, up.out
    assert not logs.exists(), f"the run's folder {logs} is still there"
    assert not list(tmp_path.iterdir()), f"left in TMPDIR: {list(tmp_path.iterdir())}"
    assert configured.get(f"{app_id}:sentinel") == b"keep me"
    assert configured.hgetall(f"{app_id}:offsets") == {b"interactions:0": b"41"}
    alive = [p for p in children if os.path.exists(f"/proc/{p}")]
    assert not alive, f"processes left running: {alive}"
