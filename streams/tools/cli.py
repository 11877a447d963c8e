"""``recstream``: the command line.

recstream up [--demo]          broker + Redis + worker on this machine (embedded)
recstream worker               a worker against RECSTREAM_BROKER / RECSTREAM_REDIS_URL
recstream replay PATH --format movielens|csv|jsonl [--rate N] [--max-lag N|auto]
recstream tail [--user ID] [--from-beginning]   print recommendations as they arrive
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.settings import SettingsError, load_settings

__all__ = ["main"]


def cmd_worker(args: argparse.Namespace) -> int:
    import faust  # noqa: F401  (imported here: the CLI's other commands start faster)

    from streams.tools.kafka_io import ensure_topics
    from streams.worker.app import create_app  # the one import of the worker from tools

    settings = load_settings()
    # with the configured partitions, before Faust subscribes: a broker that creates topics
    # on first use gives them its own default count
    ensure_topics(settings)
    app = create_app(settings)
    from faust.worker import Worker

    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from streams.tools.up import run_up

    return run_up(demo=args.demo, events=args.events, rate=args.rate, max_lag=args.max_lag)


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.tools.datasets import DataSetError, read_dataset
    from streams.tools.kafka_io import wait_for_broker
    from streams.tools.replay import publish_events, publish_items, worker_pace

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
    pace = worker_pace(settings, args.max_lag) if args.max_lag != 0 else None
    try:
        n = publish_events(
            settings, events, total=len(events), rate=args.rate, desc=ds.name, pace=pace
        )
    finally:
        if pace is not None:
            pace.close()
    print(f"published {n} events to {settings.topic('interactions')}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from models.factory import ROWS
    from streams.tools.datasets import DataSetError, read_catalogue, read_dataset
    from streams.tools.evaluate import evaluate, print_result

    settings = load_settings()
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else ROWS
    try:
        ds = read_dataset(args.path, args.format)
        items = read_catalogue(args.items) if args.items else []
        if args.limit:
            ds.events = ds.events[: args.limit]
        if args.through_kafka:
            models = ["hybrid"]
        result = evaluate(
            ds,
            models,
            k=args.k,
            thresholds=settings.thresholds,
            history=settings.history,
            session_gap=settings.session_gap,
            items=items,
            progress=not args.no_progress,
        )
        if args.through_kafka:  # the same events through broker + worker, side by side
            from streams.tools.evaluate_kafka import evaluate_through_kafka

            streamed = evaluate_through_kafka(ds, k=args.k, progress=not args.no_progress)
            result["results"] += streamed["results"]
    except (DataSetError, ValueError) as exc:
        print(f"recstream evaluate: {exc}", file=sys.stderr)
        return 2
    print_result(result, args.json)
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from streams.tools.tail import run_tail

    return run_tail(load_settings(), args)


def max_lag_arg(text: str) -> int | None:
    """``--max-lag``: a count of events (0 turns pacing off) or ``auto`` (``None``)."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recstream", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker (settings from RECSTREAM_* variables)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("up", help="start broker, Redis and a worker here")
    p.add_argument("--demo", action="store_true", help="stream a generated demo shop")
    p.add_argument("--events", type=int, default=30_000, help="demo events (default 30000)")
    p.add_argument(
        "--rate", type=float, default=300.0, help="most demo events/s (default 300; 0: no cap)"
    )
    p.add_argument(
        "--max-lag",
        type=max_lag_arg,
        default=None,
        metavar="N|auto",
        help="most demo events published and not yet processed by the worker: the demo "
        "waits for it (default auto: adapted so that events wait about 0.5 s; 0: no pacing)",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("replay", help="publish a data set as interaction events")
    p.add_argument("path")
    p.add_argument("--format", required=True, choices=["movielens", "csv", "jsonl"])
    p.add_argument(
        "--rate", type=float, default=None, help="events/s (default: as fast as possible)"
    )
    p.add_argument("--limit", type=int, default=None, help="publish only the first N events")
    p.add_argument("--no-items", action="store_true", help="do not publish the catalogue")
    p.add_argument(
        "--max-lag",
        type=max_lag_arg,
        default=0,
        metavar="N|auto",
        help="wait while N published events are unprocessed by the workers (read from "
        "Redis; auto: adapted so that events wait about 0.5 s; default 0: never wait)",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("evaluate", help="prequential evaluation of every model on a data set")
    p.add_argument("path")
    p.add_argument("--format", required=True, choices=["movielens", "csv", "jsonl"])
    p.add_argument("--items", help="catalogue: CSV item_id,title,tags (tags split by |) or JSONL")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--models", help="comma-separated rows (default: all single models + hybrid)")
    p.add_argument("--limit", type=int, help="only the first N events (in time order)")
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--through-kafka",
        action="store_true",
        help="also replay through a broker and a worker and score the lists it served",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("tail", help="print recommendations as they are published")
    p.add_argument("--user", help="only this user's recommendations")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    p.add_argument("--json", action="store_true", help="print each message as JSON")
    p.add_argument("--count", type=int, default=None, help="stop after N messages")
    p.set_defaults(func=cmd_tail)
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
