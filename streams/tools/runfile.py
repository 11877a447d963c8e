"""The run file of ``recstream up``: where its broker, Redis and workers are, for the other
commands in other shells.

``recstream up`` starts Redis (and the broker, when 9092 is taken) on ports of its choosing.
A second shell knows none of them, so ``up`` writes them to a run file while it runs:
``$RECSTREAM_RUN_FILE``, else ``$XDG_RUNTIME_DIR/recstream/up.env``, else
``~/.cache/recstream/up.env``. It is a shell file (``export RECSTREAM_BROKER=...`` lines, so
``. up.env`` works too) with the pid of the ``up`` that wrote it. ``replay``, ``tail``,
``worker`` and ``evaluate`` read it for every setting no ``RECSTREAM_*`` variable sets, as long
as that ``up`` is still running; ``up`` removes it on exit.

>>> export_line({"RECSTREAM_BROKER": "kafka://127.0.0.1:9092", "RECSTREAM_APP_ID": "my app"})
"export RECSTREAM_BROKER=kafka://127.0.0.1:9092 RECSTREAM_APP_ID='my app'"
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.settings import ENV_PREFIX, Settings, load_settings
from streams.tools.processes import proc_stat

__all__ = [
    "CliSettings",
    "export_line",
    "load_cli_settings",
    "read_run_file",
    "remove_run_file",
    "run_file_path",
    "write_run_file",
]

#: The settings ``up`` records (the others are the same in every shell unless set).
RUN_FIELDS = ("broker", "redis_url", "web_port", "app_id", "topic_prefix", "partitions")
_PID = "# pid: "


def run_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """``RECSTREAM_RUN_FILE``, else ``$XDG_RUNTIME_DIR/recstream/up.env``, else
    ``~/.cache/recstream/up.env``."""
    env = os.environ if environ is None else environ
    if env.get(f"{ENV_PREFIX}RUN_FILE"):
        return Path(env[f"{ENV_PREFIX}RUN_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "recstream" / "up.env"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".cache" / "recstream" / "up.env"


def export_line(values: Mapping[str, str]) -> str:
    """One ``export`` line that sets ``values`` in a shell."""
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def write_run_file(path: Path, values: Mapping[str, str], pid: int) -> None:
    """Record ``values`` (``RECSTREAM_*`` name -> value) for the ``up`` with ``pid``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `recstream up` while it runs (removed when it stops). `recstream replay`,",
        "# `tail`, `worker` and `evaluate` read it for what no RECSTREAM_* variable sets; a",
        "# shell can source it (. this file) to set them all.",
        f"{_PID}{pid} {_started(pid)}".rstrip(),
        *(f"{export_line({k: v})}" for k, v in values.items()),
    ]
    tmp = path.with_name(f".{path.name}.{pid}")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)  # whole or not at all, for a reader in another shell


def _started(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, from ``/proc``), to tell it
    from a later process with the same pid; empty where there is no ``/proc``."""
    fields = proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return not started or _started(pid) in ("", started)


def _parse(path: Path) -> tuple[int | None, str, dict[str, str]]:
    pid, started, values = None, "", {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(_PID):
            words = line[len(_PID) :].split()
            if words and words[0].isdigit():
                pid, started = int(words[0]), (words[1] if len(words) > 1 else "")
            continue
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            if name.startswith(ENV_PREFIX):
                values[name] = value
    return pid, started, values


def read_run_file(path: Path) -> dict[str, str] | None:
    """The values of the run file at ``path``; ``None`` when there is none, it cannot be read,
    or the ``up`` that wrote it is no longer running."""
    try:
        pid, started, values = _parse(path)
    except (OSError, ValueError):
        return None
    if pid is None or not _alive(pid, started):
        return None
    return values


def remove_run_file(path: Path, pid: int) -> None:
    """Remove the run file if ``pid`` wrote it (a later ``up`` may have replaced it)."""
    with contextlib.suppress(OSError, ValueError):
        if _parse(path)[0] == pid:
            path.unlink()


@dataclass(frozen=True)
class CliSettings:
    """Settings for a command, and where each came from (for messages)."""

    settings: Settings
    run_file: Path
    from_run_file: frozenset[str] = field(default_factory=frozenset)

    def origin(self, name: str) -> str:
        """Where the value of setting ``name`` came from, in words."""
        var = f"{ENV_PREFIX}{name.upper()}"
        if name in self.from_run_file:
            return f"from {self.run_file}, the run file of `recstream up`"
        if self.settings.is_set(name):
            return var
        return f"the default; {var} is not set"


def load_cli_settings(*, skip: Iterable[str] = ()) -> CliSettings:
    """Settings from the environment, completed from the run file of a running ``up`` for the
    fields of :data:`RUN_FIELDS` (but ``skip``) that no variable sets."""
    settings = load_settings()
    path = run_file_path()
    values = read_run_file(path) or {}
    taken = {}
    for name in RUN_FIELDS:
        var = f"{ENV_PREFIX}{name.upper()}"
        if name in skip or settings.is_set(name) or var not in values:
            continue
        taken[name] = values[var]
    if taken:
        settings = load_settings(**taken)  # the variables still apply; these fill the gaps
    return CliSettings(settings, path, frozenset(taken))
