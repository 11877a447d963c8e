"""The Prometheus text exposition (format 0.0.4) of :class:`streams.serving.metrics.LiveMetrics`.

Pure: the caller passes in what it read from Redis (users per phase) and from the consumer
(lag per partition). Counters are this worker's since it started (Prometheus' ``rate()`` copes
with the reset a restart causes); the ``recstream_users`` gauge is cluster-wide (Redis).

>>> from streams.serving.metrics import LiveMetrics
>>> text = render(LiveMetrics(), users={"cold": 2}, lag=[], now=0.0)
>>> 'recstream_users{phase="cold"} 2' in text.splitlines()
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from streams.serving.metrics import LiveMetrics

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (name, totals key, help) of the plain counters
COUNTERS = (
    ("recstream_records_total", "records", "Interaction records consumed (any outcome)."),
    ("recstream_events_total", "events", "Valid interaction events applied."),
    ("recstream_recommendations_total", "recommendations", "Recommendation lists published."),
    ("recstream_dead_letters_total", "dead", "Records sent to the dead-letter topic."),
    ("recstream_duplicates_total", "duplicates", "Events dropped as duplicates (event_id)."),
    ("recstream_replayed_total", "replayed", "Records already applied before a restart."),
    ("recstream_hits_total", "hits", "Events whose item was in the list last served."),
    ("recstream_batches_total", "batches", "Batches processed."),
)

#: (name, ``checkpoints`` key, help) of the gauges of the last checkpoint written
CHECKPOINT_GAUGES = (
    (
        "recstream_checkpoint_seconds",
        "seconds",
        "Duration of the last checkpoint written, from its start to its write.",
    ),
    (
        "recstream_last_checkpoint_timestamp_seconds",
        "written_at",
        "Unix time of the last checkpoint written (a restart replays what came after).",
    ),
)


def _label(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{text}"'


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(
    name: str, kind: str, help_: str, samples: Iterable[tuple[str, Mapping[str, Any], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    for suffix, labels, value in samples:
        tags = ",".join(f"{k}={_label(v)}" for k, v in labels.items())
        lines.append(
            f"{name}{suffix}{{{tags}}} {_num(value)}" if tags else f"{name}{suffix} {_num(value)}"
        )
    return lines


def render(
    metrics: LiveMetrics,
    *,
    users: Mapping[str, int],
    lag: Iterable[Mapping[str, Any]],
    now: float,
    checkpoints: Mapping[str, Any] | None = None,
) -> str:
    totals = metrics.totals_dict()
    out: list[str] = []
    for name, key, help_ in COUNTERS:
        out += _family(name, "counter", help_, [("", {}, totals.get(key, 0))])
    phases = sorted(metrics.phase_events)
    out += _family(
        "recstream_phase_events_total",
        "counter",
        "Valid events applied, by the user's phase when the event arrived.",
        [("", {"phase": p}, totals.get(f"events:{p}", 0)) for p in phases],
    )
    out += _family(
        "recstream_phase_hits_total",
        "counter",
        "Online hits, by the user's phase when the event arrived.",
        [("", {"phase": p}, totals.get(f"hits:{p}", 0)) for p in phases],
    )
    hist = metrics.latency_hist
    buckets = [("_bucket", {"le": _num(le / 1000.0)}, n) for le, n in hist.cumulative()]
    out += _family(
        "recstream_latency_seconds",
        "histogram",
        "Event arrival at the broker to recommendation published.",
        [*buckets, ("_sum", {}, hist.sum / 1000.0), ("_count", {}, hist.count)],
    )
    out += _family(
        "recstream_model_cpu_seconds_total",
        "counter",
        "CPU seconds of the worker's event loop spent in each model source, learning "
        '(stage="learn") and proposing candidates (stage="rank"; source="blend": the blend).',
        [
            ("", {"source": source, "stage": stage}, seconds)
            for (source, stage), seconds in sorted(metrics.model_cpu.items())
        ],
    )
    rolling = [("", {"phase": ""}, metrics.hit_rate(now))]
    rolling += [("", {"phase": p}, metrics.hit_rate(now, p)) for p in phases]
    out += _family(
        "recstream_online_hit_rate",
        "gauge",
        f"Share of events in the last {metrics.window}s whose item was in the list last served "
        '(phase="" is all phases).',
        [(s, labels, v) for s, labels, v in rolling if v is not None],
    )
    out += _family(
        "recstream_users",
        "gauge",
        "Users per phase of the switching policy (all workers, from Redis).",
        [("", {"phase": p}, n) for p, n in sorted(users.items())],
    )
    out += _family(
        "recstream_consumer_lag",
        "gauge",
        "Highwater minus the offset this worker committed, per assigned partition.",
        [
            ("", {"topic": row["topic"], "partition": row["partition"]}, row["lag"])
            for row in lag
            if row.get("lag") is not None
        ],
    )
    out += _family(
        "recstream_consumer_unread",
        "gauge",
        "Records on the broker this worker has not read yet, per assigned partition.",
        [
            ("", {"topic": row["topic"], "partition": row["partition"]}, row["unread"])
            for row in lag
            if row.get("unread") is not None
        ],
    )
    if checkpoints is not None:
        out += _family(
            "recstream_checkpoints_total",
            "counter",
            "Model checkpoints this worker wrote, or tried to write and failed.",
            [
                ("", {"outcome": "written"}, checkpoints.get("written") or 0),
                ("", {"outcome": "failed"}, checkpoints.get("failed") or 0),
            ],
        )
        for name, key, help_ in CHECKPOINT_GAUGES:
            if checkpoints.get(key) is not None:  # none before the first checkpoint
                out += _family(name, "gauge", help_, [("", {}, checkpoints[key])])
    if metrics.last_batch_at is not None:
        out += _family(
            "recstream_last_batch_timestamp_seconds",
            "gauge",
            "Unix time of the last processed batch.",
            [("", {}, metrics.last_batch_at)],
        )
    return "\n".join(out) + "\n"
