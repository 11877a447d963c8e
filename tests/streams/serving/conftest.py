"""Fixtures for the serving tests: a headless Chromium driven over the DevTools protocol, just
enough for the dashboard test.

``chromium`` is the browser's path. It is only looked for here, never installed:
``scripts/setup_tests.sh`` installs Debian's ``chromium`` when it may (root with apt-get). With no
Chromium a test that needs it is skipped with the reason, except under CI (``CI`` set), where it
fails: there the browser test must run.

``open_page(url)`` starts Chromium on ``url`` and yields a :class:`CDP` session to the page
(``async with open_page(url) as cdp: await cdp.evaluate(...)``). No selenium: Chromium starts
with ``--remote-debugging-port=0`` and the page given on its command line; we read the port it
chose from ``DevToolsActivePort``, find the page's WebSocket in ``/json/list`` and send CDP
commands over aiohttp's WebSocket client.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome", "headless_shell")


def find_chromium() -> str | None:
    """``RECSTREAM_CHROMIUM`` when set, else the first Chromium-like binary on PATH."""
    if os.environ.get("RECSTREAM_CHROMIUM"):
        return os.environ["RECSTREAM_CHROMIUM"]
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class Chromium:
    """``with Chromium(exe, url, profile_dir) as browser:`` -> ``browser.ws_url`` of the page."""

    def __init__(self, exe: str, url: str, profile: Path, size: str = "1400,1900") -> None:
        self.args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--window-size={size}",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            url,
        ]
        self.profile = profile
        self.url = url
        self.log = profile.parent / "chromium.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws_url = ""

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.args, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        port_file = self.profile / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited:\n{self.log.read_text()[-2000:]}")
            if port_file.exists() and port_file.read_text().strip():
                port = int(port_file.read_text().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    self.ws_url = pages[0]["webSocketDebuggerUrl"]
                    return self
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise TimeoutError(f"no DevTools endpoint:\n{self.log.read_text()[-2000:]}")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class CDP:
    """``async with CDP(ws_url) as cdp: await cdp.evaluate("document.title")``."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self._ids = itertools.count(1)

    async def __aenter__(self) -> CDP:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.ws_url, max_msg_size=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.session.close()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads((await asyncio.wait_for(self.ws.receive(), 30)).data)
            if reply.get("id") == msg_id:  # events (no id) are ignored
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        res = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(res["data"]))
        return path


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium; skips (fails under CI) when there is none."""
    found = find_chromium()
    if found:
        return found
    why = (
        f"no Chromium on PATH ({', '.join(CANDIDATES)}) and RECSTREAM_CHROMIUM unset; "
        "`bash scripts/setup_tests.sh` installs Debian's `chromium` when run as root with apt-get"
    )
    if in_ci():
        pytest.fail(f"CI is set, so the browser test must run: {why}", pytrace=False)
    pytest.skip(f"browser test needs Chromium: {why}")


@pytest.fixture
def open_page(chromium: str, tmp_path: Path) -> Callable[[str], AbstractAsyncContextManager[CDP]]:
    """``async with open_page(url) as cdp``: a headless Chromium showing ``url``, driven over
    CDP; the browser stops when the block ends (its log and profile are under ``tmp_path``)."""
    opened = itertools.count(1)

    @asynccontextmanager
    async def open_(url: str) -> AsyncIterator[CDP]:
        profile = tmp_path / f"chromium-profile-{next(opened)}"
        with Chromium(chromium, url, profile) as browser:
            async with CDP(browser.ws_url) as cdp:
                yield cdp

    return open_
