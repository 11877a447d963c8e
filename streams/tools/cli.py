"""``recstream``: the command line.

recstream up [--demo] [--workers N]   broker + Redis + workers on this machine (embedded)
recstream worker                      a worker against RECSTREAM_BROKER / RECSTREAM_REDIS_URL
recstream replay PATH --format F      publish a data set as interaction events, paced
recstream tail [--user ID]            print recommendations as they are published
recstream evaluate PATH --format F    prequential evaluation of the models on a data set

Every command but ``up`` takes its settings from ``RECSTREAM_*`` variables and, for what they
leave unset, from the run file of a running ``recstream up`` (:mod:`streams.tools.runfile`).
A broker or Redis that does not answer is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.settings import SettingsError
from streams.tools.pacing import EVALUATE_MAX_LAG
from streams.tools.preflight import Unreachable

__all__ = ["build_parser", "main"]

FORMATS_HELP = (
    "movielens (a MovieLens-100K folder or its u.data), csv (header with user_id,item_id and "
    "optional timestamp,type,rating|value,session_id,event_id) or jsonl (one event per line)"
)


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.tools.preflight import require_broker, require_redis, require_web_port
    from streams.tools.runfile import load_cli_settings

    cli = load_cli_settings(skip=("web_port",))  # up's worker has its own port
    require_broker(cli)
    require_redis(cli)
    settings = cli.settings
    port = require_web_port(cli)
    if port is not None:
        print(
            f"recstream worker: port {settings.web_port} is taken (another worker?): serving "
            f"on http://{settings.web_host}:{port} (set RECSTREAM_WEB_PORT to choose)",
            file=sys.stderr,
            flush=True,
        )
        settings = settings.model_copy(update={"web_port": port})

    import faust  # noqa: F401  (imported here: the CLI's other commands start faster)

    from streams.tools.kafka_io import ensure_topics
    from streams.worker.app import create_app, faust_worker, use_uvloop  # the worker's imports

    use_uvloop()

    # with the configured partitions, before Faust subscribes: a broker that creates topics
    # on first use gives them its own default count
    ensure_topics(settings)
    app = create_app(settings)
    faust_worker(app, settings.log_level).execute_from_commandline()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from streams.tools.up import run_up

    return run_up(
        demo=args.demo,
        events=args.events,
        rate=args.rate,
        max_lag=args.max_lag,
        workers=args.workers,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.tools.replay import run_replay
    from streams.tools.runfile import load_cli_settings

    return run_replay(load_cli_settings(), args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from models import collect_garbage_rarely
    from models.factory import ROWS
    from streams.tools.datasets import DataSetError, read_catalogue, read_dataset
    from streams.tools.evaluate import evaluate, print_result
    from streams.tools.evaluate_kafka import ServingStopped, evaluate_through_kafka
    from streams.tools.preflight import require_broker, require_redis
    from streams.tools.processes import interrupted_by_signals
    from streams.tools.runfile import load_cli_settings

    cli = load_cli_settings(skip=("web_port", "app_id", "topic_prefix"))
    settings = cli.settings
    collect_garbage_rarely()  # it learns the models in this process, as a worker does
    if args.through_kafka:  # a broker or Redis configured must answer; unset, one is started
        if settings.is_set("broker"):
            require_broker(cli)
        if settings.is_set("redis_url"):
            require_redis(cli)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else ROWS
    try:
        ds = read_dataset(args.path, args.format)
        items = read_catalogue(args.items) if args.items else []
        if args.limit:
            ds.events = ds.events[: args.limit]
        batch = args.batch or settings.batch_size
        if args.through_kafka:  # beside a worker that serves after every event: the same protocol
            models, batch = ["hybrid"], 1
        result = evaluate(
            ds,
            models,
            k=args.k,
            thresholds=settings.thresholds,
            history=settings.history,
            session_gap=settings.session_gap,
            items=items,
            progress=not args.no_progress,
            batch=batch,
        )
        if args.through_kafka:  # the same events through broker + worker, side by side
            with interrupted_by_signals():  # `kill` stops what it started, as ^C does
                streamed = evaluate_through_kafka(
                    ds,
                    settings,
                    k=args.k,
                    progress=not args.no_progress,
                    workers=args.workers,
                    max_lag=args.max_lag,
                )
            result["results"] += streamed["results"]
    except (DataSetError, ValueError) as exc:
        print(f"recstream evaluate: {exc}", file=sys.stderr)
        return 2
    except ServingStopped as exc:
        print(f"recstream evaluate --through-kafka: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recstream evaluate: interrupted", file=sys.stderr)
        return 130
    print_result(result, args.json)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from streams.tools.bench import run_from_args

    return run_from_args(args)


def cmd_tail(args: argparse.Namespace) -> int:
    from streams.tools.preflight import require_broker
    from streams.tools.runfile import load_cli_settings
    from streams.tools.tail import run_tail

    cli = load_cli_settings()
    require_broker(cli)
    return run_tail(cli.settings, args)


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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _command(sub: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    summary, _, more = text.partition("\n")
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary}\n{more}".strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _max_lag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--max-lag",
        type=max_lag_arg,
        default=None,
        metavar="N|auto",
        help=f"most {what} published and not yet processed by the workers (read from their "
        "offsets in Redis): publishing waits while there are more. auto (default): adapted so "
        "that an event waits about 0.5 s; 0: no pacing, publish as fast as possible",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recstream",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        "up",
        "start a broker, Redis and workers on this machine\n"
        "Starts an embedded Kafka-compatible broker (Tansu) unless RECSTREAM_BROKER is set, a\n"
        "Redis of its own unless RECSTREAM_REDIS_URL is set, and the workers; prints their\n"
        "addresses and writes them to a run file the other commands read. Ctrl-C stops all.",
    )
    p.add_argument("--demo", action="store_true", help="stream a generated demo shop through it")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes in one consumer group, each with its own web port (default 1)",
    )
    p.add_argument(
        "--events", type=positive_int, default=30_000, help="demo events (default 30000)"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=300.0,
        help="most demo events per second (default 300; 0: no cap)",
    )
    _max_lag(p, "demo events")
    p.set_defaults(func=cmd_up)

    p = _command(
        sub,
        "worker",
        "run one worker (settings from RECSTREAM_* variables)\n"
        "Consumes interactions, keeps user state in Redis, publishes recommendations and\n"
        "serves HTTP on RECSTREAM_WEB_PORT. Several with one RECSTREAM_APP_ID share the work.",
    )
    p.set_defaults(func=cmd_worker)

    p = _command(
        sub,
        "replay",
        "publish a data set as interaction events\n"
        "Events go out in timestamp order (ties keep file order), paced to the workers; rows\n"
        "that are not valid events are reported and not published.",
    )
    p.add_argument("path", help="the data file (a folder for movielens)")
    p.add_argument(
        "--format", required=True, choices=["movielens", "csv", "jsonl"], help=FORMATS_HELP
    )
    p.add_argument(
        "--rate", type=float, default=None, help="most events per second (default: no cap)"
    )
    p.add_argument("--limit", type=int, default=None, help="publish only the first N events")
    p.add_argument(
        "--no-items",
        action="store_true",
        help="do not publish the catalogue (MovieLens' u.item) to topic items",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first invalid row, publishing nothing (default: report them, skip "
        "them, publish the rest)",
    )
    _max_lag(p, "events")
    p.set_defaults(func=cmd_replay)

    p = _command(
        sub,
        "evaluate",
        "prequential evaluation of the models on a data set\n"
        "Each event is first scored (was its item in the list the user would have been\n"
        "served?), then learned, through the worker's own model code, in this process.",
    )
    p.add_argument("path", help="the data file (a folder for movielens)")
    p.add_argument(
        "--format", required=True, choices=["movielens", "csv", "jsonl"], help=FORMATS_HELP
    )
    p.add_argument(
        "--items", help="a catalogue: CSV item_id,title,tags (tags split by |) or JSONL items"
    )
    p.add_argument("--k", type=int, default=10, help="list length scored (default 10)")
    p.add_argument("--models", help="comma-separated rows (default: every model and the hybrid)")
    p.add_argument("--limit", type=int, help="only the first N events (in time order)")
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--through-kafka",
        action="store_true",
        help="also replay through a broker and a worker (started here unless configured) and "
        "score the lists they served",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="with --through-kafka: N workers in one consumer group (default 1)",
    )
    p.add_argument(
        "--max-lag",
        type=max_lag_arg,
        default=EVALUATE_MAX_LAG,
        metavar="N|auto",
        help=f"with --through-kafka: most events published and not yet applied by the workers "
        f"(default {EVALUATE_MAX_LAG}: the order in which a live stream reaches workers that "
        "keep up; 0: as fast as the producer goes, the backlog then read in an order that "
        "changes from run to run; auto: adapted to about 0.5 s of waiting)",
    )
    p.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        metavar="N",
        help="score and learn in batches of N events as the worker does: each batch's lists "
        "are ranked before it is learned (default RECSTREAM_BATCH_SIZE, 500; 1: every event "
        "scored against a list ranked just before it)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = _command(
        sub,
        "bench",
        "throughput and latency of the whole pipeline beside a no-op agent\n"
        "On an embedded broker and a Redis of its own: a Faust agent that only counts events,\n"
        "then real workers, on a fixed stream published unpaced and then at --rate; prints\n"
        "events/s, their ratio, latency percentiles, peak memory (docs/PERFORMANCE.md).",
    )
    from streams.tools.bench import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_bench)

    p = _command(
        sub,
        "tail",
        "print recommendations as they are published\n"
        "Reads topic recommendations without a consumer group: nothing is committed, any\n"
        "number of tails can watch side by side.",
    )
    p.add_argument("--user", help="only this user's recommendations")
    p.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the oldest message kept (default: from now on)",
    )
    p.add_argument("--json", action="store_true", help="print each message as one line of JSON")
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
    except Unreachable as exc:
        print(f"recstream {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
