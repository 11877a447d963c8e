"""Issue 5, "see it live": /stats, /metrics and /dashboard (in a real headless Chromium)
against a real worker, broker (Tansu) and Redis."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

#: users and how many events each sends: three end up "active" (>= 5), two "warm" (1-4)
HISTORIES = {"a0": 6, "a1": 6, "a2": 7, "w0": 2, "w1": 1}
BAD = [b"{not json", json.dumps({"item_id": "i1"}).encode()]


def publish_shop(publish: Callable[..., None]) -> int:
    n = 0
    for user, count in HISTORIES.items():
        for i in range(count):
            publish({"user_id": user, "item_id": f"i{(i * 3) % 7}", "event_id": f"{user}-{i}"})
            n += 1
    for raw in BAD:
        publish(raw, key=b"bad")
    return n


def get_text(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()


def prometheus_samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (the text format must parse)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith(("# HELP ", "# TYPE ")), line
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_stats_and_metrics_report_what_the_worker_did(settings, worker, publish, wait_for):
    worker.start()
    n_events = publish_shop(publish)
    wait_for(
        lambda: (
            worker.get("/stats")[1]["totals"].get("events") == n_events
            and worker.get("/stats")[1]["dlq"]["count"] == len(BAD)
        ),
        what=f"{n_events} events and {len(BAD)} dead letters in /stats",
    )
    status, stats = worker.get("/stats")
    assert status == 200
    assert stats["phases"] == ["cold", "warm", "active", "established"]
    assert stats["users_by_phase"] == {"cold": 0, "warm": 2, "active": 3, "established": 0}
    assert stats["rates"]["records_in"] > 0 and stats["rates"]["recommendations_out"] > 0
    assert stats["totals"]["records"] == n_events + len(BAD)
    assert stats["latency_ms"]["p50"] is not None
    assert stats["latency_ms"]["p50"] <= stats["latency_ms"]["p95"] <= stats["latency_ms"]["p99"]
    phases = stats["hit_rate"]["phases"]
    assert sum(p["events"] for p in phases.values()) == n_events
    assert phases["cold"]["events"] == len(HISTORIES)  # each user's first event
    assert stats["recent"] and any(r["items"] for r in stats["recent"])
    assert all(it["sources"] for r in stats["recent"] for it in r["items"])
    assert {e["offset"] for e in stats["dlq"]["recent"]} and "user_id" in json.dumps(
        stats["dlq"]["recent"]
    )
    assert stats["trending"] and stats["trending"][0]["score"] > 0
    topic = settings.topic("interactions")

    def caught_up() -> bool:
        rows = [r for r in worker.get("/stats")[1]["lag"] if r["topic"] == topic]
        return sum(r["highwater"] or 0 for r in rows) == n_events + len(BAD) and all(
            r["unread"] == 0 for r in rows
        )

    wait_for(caught_up, what="highwaters summing to the records published, none unread")
    wait_for(
        lambda: worker.get("/stats")[1]["checkpoints"]["written"] >= 1,
        what="a model checkpoint written (every second here) in /stats",
    )
    done = worker.get("/stats")[1]["checkpoints"]
    assert done["failed"] == 0 and done["seconds"] > 0 and done["written_at"] <= time.time()

    status, ctype, text = get_text(f"{worker.base}/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    samples = prometheus_samples(text)
    assert samples["recstream_events_total"] == n_events
    assert samples["recstream_dead_letters_total"] == len(BAD)
    assert samples["recstream_records_total"] == n_events + len(BAD)
    assert samples['recstream_users{phase="active"}'] == 3
    assert samples['recstream_users{phase="warm"}'] == 2
    recs = samples["recstream_recommendations_total"]
    assert recs >= len(HISTORIES)
    assert samples['recstream_latency_seconds_bucket{le="+Inf"}'] == recs
    assert samples["recstream_latency_seconds_count"] == recs
    assert f'recstream_consumer_lag{{topic="{topic}",partition="0"}}' in samples
    cpu = "recstream_model_cpu_seconds_total"
    for source in settings.sources:  # every source learned every batch, on the event loop
        assert samples[f'{cpu}{{source="{source}",stage="learn"}}'] > 0
    assert samples[f'{cpu}{{source="blend",stage="rank"}}'] > 0
    assert samples['recstream_checkpoints_total{outcome="written"}'] >= done["written"]
    assert samples['recstream_checkpoints_total{outcome="failed"}'] == 0
    assert samples["recstream_last_checkpoint_timestamp_seconds"] >= done["written_at"]

    status, ctype, page = get_text(f"{worker.base}/dashboard")
    assert status == 200 and ctype.startswith("text/html") and "recstream · live" in page
    status, ctype, script = get_text(f"{worker.base}/dashboard/dashboard.js")
    assert ctype.startswith("application/javascript") and 'fetch("/stats"' in script
    assert worker.get("/dashboard/secret.txt")[0] == 404


@pytest.fixture
def traffic(publish: Callable[..., None]) -> Iterator[Callable[[], None]]:
    """start() publishes ~40 events/s for a rotating set of users until the test ends."""
    stop = threading.Event()

    def run() -> None:
        n = 0
        while not stop.is_set():
            publish({"user_id": f"live{n % 15}", "item_id": f"i{(n * 7) % 23}"})
            n += 1
            time.sleep(0.025)

    thread = threading.Thread(target=run, daemon=True)
    yield thread.start
    stop.set()
    thread.join(5)


READ_PAGE = """document.querySelector('#kpi-events-in') === null ? "null" : JSON.stringify({
  status: document.querySelector('#status').textContent,
  eventsIn: document.querySelector('#kpi-events-in').textContent,
  recsOut: document.querySelector('#kpi-recs-out').textContent,
  p95: document.querySelector('#kpi-p95').textContent,
  phaseUsers: Object.fromEntries([...document.querySelectorAll('[data-phase-users]')]
    .map(td => [td.dataset.phaseUsers, Number(td.textContent)])),
  feed: [...document.querySelectorAll('#feed-table tbody tr')].map(tr => tr.textContent),
  paths: document.querySelectorAll('#chart-throughput path').length,
  worker: document.querySelector('#worker').textContent,
})"""


def number(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:  # a dash: no figure yet
        return 0.0


@pytest.mark.browser
def test_dashboard_in_headless_chromium_shows_live_numbers(
    worker, publish, traffic, open_page, tmp_path: Path, wait_for
):
    worker.start()
    publish_shop(publish)
    traffic()
    wait_for(lambda: worker.get("/stats")[1]["totals"].get("events", 0) > 20, what="events")

    async def drive(url: str) -> tuple[dict, dict]:
        async with open_page(url) as cdp:
            deadline = time.monotonic() + 60
            first: dict | None = None
            while time.monotonic() < deadline:
                page = json.loads(await cdp.evaluate(READ_PAGE))
                if page is None:  # still loading
                    await asyncio.sleep(0.3)
                    continue
                ready = number(page["eventsIn"]) > 0 and page["feed"]
                if first is None and ready:
                    first = page
                elif (
                    first is not None
                    and page["status"] != first["status"]  # re-rendered...
                    and page["feed"] != first["feed"]  # ...with newer lists: it moves
                ):
                    await asyncio.sleep(1.5)  # let the charts draw another tick
                    await cdp.screenshot(tmp_path / "dashboard.png")
                    return first, json.loads(await cdp.evaluate(READ_PAGE))
                await asyncio.sleep(0.5)
            raise AssertionError(f"dashboard did not come alive: {first} / {page}")

    _, page = asyncio.run(drive(f"{worker.base}/dashboard"))

    assert page["status"].startswith("live, pushed"), page["status"]  # SSE, not the fallback
    assert number(page["eventsIn"]) > 0 and number(page["recsOut"]) > 0
    assert number(page["p95"]) > 0
    assert page["phaseUsers"]["active"] >= 3 and page["phaseUsers"]["warm"] >= 1
    assert sum(page["phaseUsers"].values()) >= len(HISTORIES)
    assert page["paths"] == 2  # both throughput lines drawn
    assert "s ago" in page["worker"].split("checkpoint ", 1)[1], page["worker"]  # every 1 s here
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / 'dashboard.png'}")


def test_stats_are_pushed_every_second_over_server_sent_events(settings, worker, publish):
    worker.start()
    publish({"user_id": "sse", "item_id": "i1", "event_id": "sse-1"})
    started = time.monotonic()
    snapshots = []
    with urllib.request.urlopen(f"{worker.base}/stats/stream", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        while len(snapshots) < 3:
            line = resp.readline().decode()
            if line.startswith("data: "):
                snapshots.append(json.loads(line[len("data: ") :]))
    elapsed = time.monotonic() - started
    assert all("totals" in s and "users_by_phase" in s for s in snapshots)
    assert 1.5 <= elapsed <= 6.0, f"3 snapshots took {elapsed:.1f}s: not about one a second"
    assert snapshots[-1]["now"] > snapshots[0]["now"]


# -- the page's layout at common widths, on a canned /stats (issue #17, item 6) -------------
WIDTHS = (1280, 1400, 1920)  # 1,400: where the lag table was cut off
NO_FIGURE = "\N{EN DASH}"  # what the page shows for a figure it does not have
LAG_TOPICS = ("interactions", "items", "model-updates")


def canned_stats(now: float) -> dict:
    """A /stats snapshot as a busy worker's: 120 s of traffic in which the cold phase had
    events until 30 s ago and none since, latencies up to 2.4 s, 12 partitions of three topics
    assigned, items with long titles."""
    from state.stats import BatchStats
    from streams.schemas import RecItem, Recommendation
    from streams.serving.metrics import LiveMetrics

    metrics = LiveMetrics()
    for ago in range(120, 0, -1):
        stats = BatchStats(batches=1)
        for i in range(40):
            phase = "established" if i % 2 else "active"
            if ago > 30 and i < 4:
                phase = "cold"
            elif i < 10:
                phase = "warm"
            stats.count_event(phase, hit=phase != "cold" and i % 3 == 0)
        recs = [
            Recommendation(
                user_id=f"user{ago:04d}-{j}",
                strategy="established",
                interactions=40 + j,
                event_id=f"e{ago}-{j}",
                latency_ms=300.0 + 2100.0 * (j == 0),
                items=[
                    RecItem(
                        item_id=f"item{n:04d}",
                        score=1.0 / (n + 1),
                        sources=["cf", "ease", "seq", "mf", "content"],
                        title=f"The Remarkably Long Title of Film Number {n} (Director's Cut)",
                    )
                    for n in range(5)
                ],
            )
            for j in range(3)
        ]
        published = [r.model_dump(mode="json") for r in recs]  # as the worker publishes them
        cpu = {("seq", "learn"): 0.003, ("seq", "rank"): 0.002, ("blend", "rank"): 0.004}
        metrics.record_batch(stats, published, [], now - ago + 0.5, cpu)
        mix = {"cold": 0, "warm": 120 - ago // 4, "active": 340, "established": 2_100 + ago}
        metrics.sample_users(mix, now - ago + 0.5)
    snap = metrics.snapshot(now)
    lag = [
        {
            "topic": f"rs-demo.{topic}",
            "partition": p,
            "highwater": 1_234_567 + p,
            "committed": 1_230_000 + p,
            "read": 1_234_000 + p,
            "lag": 4_567,
            "unread": 566,
        }
        for topic in LAG_TOPICS
        for p in range(12)
    ]
    phases = ["cold", "warm", "active", "established"]
    snap.update(
        phases=phases,
        users_by_phase={"cold": 0, "warm": 120, "active": 340, "established": 2_100},
        cluster=None,
        lag=lag,
        trending=[{"item_id": f"item{n:04d}", "score": 100.0 - n} for n in range(10)],
        worker={
            "app_id": "rs-demo",
            "topic_prefix": "rs-demo.",
            "k": 10,
            "uptime_s": 3600.0,
            "redis_up": True,
        },
        checkpoints={"written": 360, "failed": 1, "seconds": 0.31, "written_at": now - 4.0},
    )
    return snap


@pytest.fixture
def canned_dashboard() -> Iterator[str]:
    """The dashboard's own files served with a canned /stats (and /stats/stream): its URL."""
    from aiohttp import web

    from streams.serving.dashboard import STATIC
    from streams.tools.embedded import free_port

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=(STATIC / "dashboard.html").read_text(), content_type="text/html")

    async def script(request: web.Request) -> web.Response:
        body = (STATIC / "dashboard.js").read_text()
        return web.Response(text=body, content_type="application/javascript")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(canned_stats(time.time()))

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            while True:
                await resp.write(f"data: {json.dumps(canned_stats(time.time()))}\n\n".encode())
                await asyncio.sleep(0.5)
        except (ConnectionResetError, RuntimeError):
            return resp

    app = web.Application()
    app.add_routes(
        [
            web.get("/dashboard", page),
            web.get("/dashboard/dashboard.js", script),
            web.get("/stats", stats),
            web.get("/stats/stream", stream),
        ]
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/dashboard"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


LAYOUT = """document.querySelector('#status') === null ? "null" : JSON.stringify({
  status: document.querySelector('#status').textContent,
  width: window.innerWidth,
  legend: Object.fromEntries([...document.querySelectorAll('#legend-hits span')]
    .map(s => s.textContent.split(': '))),
  table10s: Object.fromEntries([...document.querySelectorAll('#phase-table tbody tr')]
    .map(tr => [tr.cells[0].textContent.trim(), tr.cells[5].textContent])),
  coldPoints: (() => {
    const path = document.querySelector('#chart-hits path[data-name="cold"]');
    return path ? [...path.getAttribute('d').matchAll(/[ML]([\\d.]+),/g)].map(m => +m[1]) : [];
  })(),
  xAt10s: (() => {  // where "10 s ago" is on the x axis: between its first label and "now"
    const texts = [...document.querySelectorAll('#chart-hits text')];
    const now = texts.find(t => t.textContent === 'now');
    const first = texts.find(t => t.getAttribute('text-anchor') === 'start');
    if (!now || !first) return null;  // not drawn yet
    const x0 = parseFloat(first.textContent), xNow = +now.getAttribute('x');
    return xNow + (+first.getAttribute('x') - xNow) * (-10 / x0);
  })(),
  clippedLabels: [...document.querySelectorAll('svg.chart')].flatMap(svg => {
    const box = svg.viewBox.baseVal;
    return [...svg.querySelectorAll('text')].filter(t => {
      const b = t.getBBox();
      return b.x < box.x - 0.5 || b.x + b.width > box.x + box.width + 0.5;
    }).map(t => svg.id + ': ' + t.textContent);
  }),
  overflowing: [...document.querySelectorAll('.card')].filter(c =>
    c.scrollWidth > c.clientWidth + 1 || c.getBoundingClientRect().right > window.innerWidth
  ).map(c => c.querySelector('h2') ? c.querySelector('h2').textContent : c.className),
  lagRows: document.querySelectorAll('#lag-table tbody tr').length,
  feedTitles: [...document.querySelectorAll('#feed-table .title')].length,
  cpuRows: [...document.querySelectorAll('#cpu-table tbody tr')]
    .map(tr => [...tr.cells].slice(0, 3).map(c => c.textContent)),
})"""


@pytest.mark.browser
def test_dashboard_layout_at_1280_1400_and_1920_px_wide(canned_dashboard, open_page, tmp_path):
    async def drive() -> dict[int, dict]:
        pages = {}
        async with open_page(canned_dashboard) as cdp:
            for width in WIDTHS:
                await cdp.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=1000,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                deadline = time.monotonic() + 20
                while True:
                    page = json.loads(await cdp.evaluate(LAYOUT))
                    if page and page["status"].startswith("live") and page["width"] == width:
                        break
                    assert time.monotonic() < deadline, page
                    await asyncio.sleep(0.3)
                await asyncio.sleep(1.2)  # another push: drawn at this width
                pages[width] = json.loads(await cdp.evaluate(LAYOUT))
                shot = await cdp.screenshot(tmp_path / f"dashboard-{width}.png")
                print(f"screenshot: {shot}")
        return pages

    for width, page in asyncio.run(drive()).items():
        # a phase with no event in the window has no hit rate: a dash in the table, the
        # legend and no line there (it showed 0 %)
        assert page["table10s"]["cold"] == NO_FIGURE, page["table10s"]
        assert page["legend"]["cold"] == NO_FIGURE, (width, page["legend"])
        assert page["legend"]["warm"].endswith("%"), page["legend"]
        assert page["coldPoints"] and max(page["coldPoints"]) < page["xAt10s"], page
        assert not page["clippedLabels"], (width, page["clippedLabels"])
        assert not page["overflowing"], (width, page["overflowing"])
        assert page["lagRows"] == 12 * len(LAG_TOPICS)
        assert page["feedTitles"] > 0, "no titles in the feed"
        # 120 batches of 40 events: 0.005 s of seq and 0.004 of the blend each, per event
        cpu_rows = page["cpuRows"]
        assert cpu_rows == [["seq", "75", "50"], ["blend", NO_FIGURE, "100"]], cpu_rows
