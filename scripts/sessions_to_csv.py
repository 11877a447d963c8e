"""Turn the session-click samples into recstream's CSV (user_id,item_id,timestamp,session_id).

    python scripts/sessions_to_csv.py diginetica ../shared/datasets/diginetica-sample OUT.csv
    python scripts/sessions_to_csv.py yoochoose ../shared/datasets/yoochoose-100k-sample OUT.csv

Anonymous sessions become users (one session each). DIGINETICA is ordered by (eventdate,
session_id, timeframe), its timestamp is the day plus the in-session time; YOOCHOOSE's train
file is followed by its test file. The data stay where they are: write OUT outside the repo.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path


def diginetica(folder: Path) -> list[tuple[str, str, float]]:
    rows = []
    with (folder / "sample_train-item-views.csv").open() as fh:
        for r in csv.DictReader(fh, delimiter=";"):
            day = datetime.strptime(r["eventdate"], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            rows.append((r["eventdate"], int(r["session_id"]), int(r["timeframe"]), r, day))
    rows.sort(key=lambda x: x[:3])
    return [(r["session_id"], r["item_id"], day + tf / 1000.0) for _, _, tf, r, day in rows]


def yoochoose(folder: Path) -> list[tuple[str, str, float]]:
    out = []
    for name in ("yoochoose-clicks-100k_train_full.txt", "yoochoose-clicks-100k_test.txt"):
        with (folder / name).open() as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                out.append((r["SessionId"], r["ItemId"], float(r["Time"])))
    return out


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in {"diginetica", "yoochoose"}:
        print(__doc__, file=sys.stderr)
        return 2
    kind, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if not folder.is_dir():
        print(f"{folder}: not found", file=sys.stderr)
        return 2
    rows = diginetica(folder) if kind == "diginetica" else yoochoose(folder)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "timestamp", "session_id", "type"])
        for session, item, ts in rows:
            w.writerow([f"s{session}", item, f"{ts:.3f}", f"s{session}", "view"])
    print(f"{len(rows)} events -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
