"""``recstream``: the command line.

recstream up [--demo]          broker + Redis + worker on this machine (embedded)
recstream worker               a worker against RECSTREAM_BROKER / RECSTREAM_REDIS_URL
recstream replay PATH --format movielens|csv|jsonl [--rate N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.settings import SettingsError, load_settings

__all__ = ["main"]


def cmd_worker(args: argparse.Namespace) -> int:
    import faust  # noqa: F401  (imported here: the CLI's other commands start faster)

    from streams.app import create_app

    settings = load_settings()
    app = create_app(settings)
    from faust.worker import Worker

    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from streams.up import run_up

    return run_up(demo=args.demo, events=args.events, rate=args.rate)


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.datasets import DataSetError, read_dataset
    from streams.kafka_io import wait_for_broker
    from streams.replay import publish_events, publish_items

    settings = load_settings()
    try:
        ds = read_dataset(args.path, args.format)
    except DataSetError as exc:
        print(f"recstream replay: {exc}", file=sys.stderr)
        return 2
    for line in ds.skipped[:10]:
        print(f"skipped {line}", file=sys.stderr)
    if len(ds.skipped) > 10:
        print(f"... and {len(ds.skipped) - 10} more skipped lines", file=sys.stderr)
    wait_for_broker(settings.bootstrap_servers)
    if ds.items and not args.no_items:
        n = publish_items(settings, ds.items)
        print(f"published {n} catalogue items to {settings.topic('items')}")
    events = ds.events[: args.limit] if args.limit else ds.events
    n = publish_events(settings, events, total=len(events), rate=args.rate, desc=ds.name)
    print(f"published {n} events to {settings.topic('interactions')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recstream", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker (settings from RECSTREAM_* variables)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("up", help="start broker, Redis and a worker here")
    p.add_argument("--demo", action="store_true", help="stream a generated demo shop")
    p.add_argument("--events", type=int, default=30_000, help="demo events (default 30000)")
    p.add_argument("--rate", type=float, default=300.0, help="demo events/s (default 300)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("replay", help="publish a data set as interaction events")
    p.add_argument("path")
    p.add_argument("--format", required=True, choices=["movielens", "csv", "jsonl"])
    p.add_argument(
        "--rate", type=float, default=None, help="events/s (default: as fast as possible)"
    )
    p.add_argument("--limit", type=int, default=None, help="publish only the first N events")
    p.add_argument("--no-items", action="store_true", help="do not publish the catalogue")
    p.set_defaults(func=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"recstream: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
