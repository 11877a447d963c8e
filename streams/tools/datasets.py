"""Read interaction data sets as event dicts in timestamp order (ties keep file order).

Formats: ``movielens`` (a folder or ``u.data`` file in the MovieLens-100K layout, catalogue
from ``u.item``/``u.genre`` beside it), ``csv`` (a header naming ``user_id,item_id`` and
optionally ``rating``/``value``, ``timestamp``, ``type``, ``session_id``, ``event_id``;
``,``, ``;`` or tab separated) and ``jsonl`` (one interaction event per line). Every event
gets a deterministic ``event_id`` from its source line, so replaying a file twice is a no-op
for the worker. A CSV or JSONL row that the worker would dead-letter (an empty ``user_id``, an
unknown ``type``, a timestamp that is not one, before 1990 or more than ``max_skew`` seconds
ahead of now) is left out and listed in ``DataSet.skipped`` with its line and the reason.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streams.schemas import Interaction, event_time_error, validation_error_text

__all__ = [
    "FORMATS",
    "DataSet",
    "DataSetError",
    "invalid_reason",
    "read_catalogue",
    "read_dataset",
]

FORMATS = ("movielens", "csv", "jsonl")


class DataSetError(ValueError):
    """The file is missing or not in the format asked for; the message says where."""


@dataclass
class DataSet:
    name: str
    events: list[dict[str, Any]]
    items: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "line N: reason", not in events
    rows: int = 0  # data rows read (events + skipped)


def invalid_reason(event: dict[str, Any], *, now: float, max_skew: float) -> str | None:
    """Why the worker would dead-letter ``event`` (as its DLQ reason says it), or ``None``.

    >>> invalid_reason({"user_id": "", "item_id": "a"}, now=2e9, max_skew=86400.0)
    'user_id: String should have at least 1 character'
    """
    try:
        ev = Interaction.model_validate(event)
    except ValidationError as exc:
        return validation_error_text(exc)
    return event_time_error(ev.timestamp, arrival=now, max_skew=max_skew)


def _sorted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Stable sort: events with equal timestamps keep their file order.
    return sorted(events, key=lambda e: e.get("timestamp") or 0.0)


def _movielens(path: Path) -> DataSet:
    folder = path if path.is_dir() else path.parent
    data = folder / "u.data" if path.is_dir() else path
    if not data.exists():
        raise DataSetError(f"{data}: not found (expected the MovieLens-100K u.data file)")
    events = []
    with data.open() as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split("\t")
            if len(parts) != 4:
                raise DataSetError(f"{data}:{n}: expected 4 tab-separated fields")
            user, item, rating, ts = parts
            events.append(
                {
                    "event_id": f"{data.name}:{n}",
                    "user_id": user,
                    "item_id": item,
                    "type": "rating",
                    "value": float(rating),
                    "timestamp": float(ts),
                }
            )
    name = data.parent.name or data.name
    return DataSet(name, _sorted(events), _movielens_items(folder), rows=len(events))


def _movielens_items(folder: Path) -> list[dict[str, Any]]:
    item_file, genre_file = folder / "u.item", folder / "u.genre"
    if not item_file.exists():
        return []
    genres = []
    if genre_file.exists():
        genres = [ln.split("|")[0] for ln in genre_file.read_text("latin-1").splitlines() if ln]
    items = []
    for line in item_file.read_text("latin-1").splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        flags = parts[5:]
        tags = [g for g, f in zip(genres, flags, strict=False) if f.strip() == "1"]
        items.append({"item_id": parts[0], "op": "upsert", "title": parts[1], "tags": tags})
    return items


def _csv(path: Path, max_skew: float) -> DataSet:
    if not path.is_file():
        raise DataSetError(f"{path}: not found")
    with path.open(newline="") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(fh, dialect=dialect)
        cols = set(reader.fieldnames or [])
        if not {"user_id", "item_id"} <= cols:
            raise DataSetError(f"{path}: header must name user_id and item_id, got {sorted(cols)}")
        events, skipped, now, rows = [], [], time.time(), 0
        for n, row in enumerate(reader, 2):
            rows += 1
            ev: dict[str, Any] = {"user_id": row["user_id"], "item_id": row["item_id"]}
            ev["event_id"] = row.get("event_id") or f"{path.name}:{n}"
            try:
                value = row.get("rating") or row.get("value")
                if value not in (None, ""):
                    ev["value"] = float(value)
                    ev["type"] = row.get("type") or ("rating" if "rating" in cols else "click")
                elif row.get("type"):
                    ev["type"] = row["type"]
                if row.get("timestamp"):
                    ts = row["timestamp"]
                    ev["timestamp"] = float(ts) if ts.replace(".", "", 1).isdigit() else ts
                if row.get("session_id"):
                    ev["session_id"] = row["session_id"]
            except ValueError as exc:
                skipped.append(f"line {n}: {exc}")
                continue
            reason = invalid_reason(ev, now=now, max_skew=max_skew)
            if reason is not None:
                skipped.append(f"line {n}: {reason}")
                continue
            events.append(ev)
    return DataSet(path.stem, _sorted_mixed(events), [], skipped, rows)


def _sorted_mixed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from streams.schemas import _epoch_seconds

    def key(e: dict[str, Any]) -> float:
        try:
            return float(_epoch_seconds(e.get("timestamp")) or 0.0)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 0.0

    return sorted(events, key=key)


def _jsonl(path: Path, max_skew: float) -> DataSet:
    if not path.is_file():
        raise DataSetError(f"{path}: not found")
    events, skipped, now, rows = [], [], time.time(), 0
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rows += 1
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as exc:
                skipped.append(f"line {n}: invalid JSON ({exc.msg})")
                continue
            if not isinstance(ev, dict):
                skipped.append(f"line {n}: not a JSON object")
                continue
            ev.setdefault("event_id", f"{path.name}:{n}")
            reason = invalid_reason(ev, now=now, max_skew=max_skew)
            if reason is not None:
                skipped.append(f"line {n}: {reason}")
                continue
            events.append(ev)
    return DataSet(path.stem, _sorted_mixed(events), [], skipped, rows)


def read_dataset(path: str | Path, fmt: str, *, max_skew: float = 86400.0) -> DataSet:
    """The events of ``path`` in ``fmt``, sorted by timestamp (stable); rows that are not
    valid events (timestamps over ``max_skew`` s ahead of now included) in ``skipped``."""
    p = Path(path)
    if fmt == "movielens":
        return _movielens(p)
    if fmt == "csv":
        return _csv(p, max_skew)
    if fmt == "jsonl":
        return _jsonl(p, max_skew)
    raise DataSetError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def read_catalogue(path: str | Path) -> list[dict[str, Any]]:
    """Item events from a CSV (``item_id,title,tags`` with tags split by ``|``) or JSONL."""
    p = Path(path)
    if not p.is_file():
        raise DataSetError(f"{p}: not found")
    if p.suffix == ".jsonl":
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if "item_id" not in (reader.fieldnames or []):
            raise DataSetError(f"{p}: header must name item_id (and title, tags)")
        return [
            {
                "item_id": row["item_id"],
                "op": "upsert",
                "title": row.get("title") or "",
                "tags": [t for t in (row.get("tags") or "").split("|") if t],
            }
            for row in reader
        ]
