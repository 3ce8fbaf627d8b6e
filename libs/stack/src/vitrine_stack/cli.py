"""`python -m vitrine_stack up|topics|demo|eval|dlq`: run the platform on one machine,
create topics, run the demo, score the shoppable-video pipeline on ShopBench, or list and
replay dead letters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from vitrine_stack.dlq import add_dlq_parser, run_dlq
from vitrine_stack.platform import DEFAULT_DATA_DIR, DEFAULT_SERVICES, EmbeddedPlatform

__all__ = ["main"]


def _services(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vitrine_stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up",
        help="start broker, database and services; stop them on Ctrl-C / SIGTERM",
        description="Start Tansu, PostgreSQL, the topics and the services, print where "
        "they are, and run until SIGINT/SIGTERM. KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL in "
        "the environment mean: use those instead of starting a broker / database.",
    )
    up.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="default: %(default)s")
    up.add_argument("--fresh", action="store_true", help="wipe the data dir first")
    up.add_argument(
        "--services",
        type=_services,
        default=list(DEFAULT_SERVICES),
        help="comma-separated, '' for none (default: %(default)s)",
    )
    up.add_argument("--broker-port", type=int, help="default: a free port")
    up.add_argument(
        "--broker-storage",
        choices=["memory", "s3"],
        help="memory (default, or $VITRINE_BROKER_STORAGE): lost on stop; s3: kept in an"
        " embedded SeaweedFS under the data dir",
    )
    up.add_argument("--postgres-port", type=int, help="default: a free port")
    up.add_argument("--echo", action="store_true", help="also print service logs here")
    up.add_argument("--ready-timeout", type=float, default=120.0, help="seconds per service")

    topics = commands.add_parser(
        "topics",
        help="create the registry's topics on a broker (e.g. as a Kubernetes init job)",
    )
    topics.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="default: $KAFKA_BOOTSTRAP_SERVERS",
    )
    topics.add_argument("--replication-factor", type=int, default=1)
    topics.add_argument("--timeout", type=float, default=60.0, help="seconds, default 60")

    demo = commands.add_parser(
        "demo", help="run the end-to-end demo on a fresh embedded platform, then stop"
    )
    demo.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR / "demo"))

    evaluate = commands.add_parser(
        "eval",
        help="run ShopBench videos through detector and catalog and score the tags",
        description="Make the ShopBench split (seed 7 unless --seed, full scale) if missing,"
        " upload its videos to a fresh embedded platform, and print product-level precision"
        " and recall, top-1 among look-alikes and the time from upload to the first tag.",
    )
    evaluate.add_argument(
        "--split",
        choices=["val", "test", "train"],
        default="test",
        help="train: only to keep the detector's real tracks of training videos for"
        " train_matcher.py --tracks",
    )
    evaluate.add_argument(
        "--calibrate",
        action="store_true",
        help="also sweep the threshold rule's threshold and margin (use on --split val only)",
    )
    evaluate.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR / "eval"))
    evaluate.add_argument(
        "--seed",
        type=int,
        default=7,
        help="ShopBench seed: 7 is the one the figures are quoted on; another seed's val"
        " split is more validation data (its own catalog, videos never trained on)",
    )
    evaluate.add_argument(
        "--dataset", help="where the dataset is (default: .vitrine/shopbench/seed-<seed>-full)"
    )
    evaluate.add_argument(
        "--pool-with",
        nargs="*",
        default=[],
        type=Path,
        help="with --calibrate: counts saved by calibrating other validation splits, pooled",
    )

    add_dlq_parser(commands, str(DEFAULT_DATA_DIR))
    return parser


def _table(platform: EmbeddedPlatform) -> str:
    info = platform.describe()
    rows = [
        ("broker", f"{info['bootstrap_servers']}  ({info['broker']})"),
        ("database", f"{info['database_url']}  ({info['database']})"),
        ("media", info["media_root"]),
        ("qdrant", info["qdrant_path"]),
        ("logs", info["log_dir"]),
    ]
    lines = [f"Vitrine is up  (data dir {info['data_dir']}, launcher pid {info['pid']})", ""]
    lines += [f"  {key:<10}{value}" for key, value in rows]
    if info["services"]:
        width = max(len(name) for name in info["services"]) + 2
        lines += ["", f"  {'service':<{width}}{'url':<26}{'docs':<32}metrics"]
        for name, service in info["services"].items():
            url = service["url"]
            lines.append(f"  {name:<{width}}{url:<26}{url + '/docs':<32}{url + '/metrics'}")
    lines += [
        "",
        "  for your shell:",
        f"    export KAFKA_BOOTSTRAP_SERVERS={info['bootstrap_servers']}",
        f"    export DATABASE_URL={info['database_url']}",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def _up(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    stop = asyncio.Event()
    running = False

    def on_signal(signum: int) -> None:
        print(f"\n{signal.Signals(signum).name}: stopping...", file=sys.stderr, flush=True)
        if running:
            stop.set()
        else:
            main_task.cancel()  # still starting: abort start, which cleans up after itself

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)

    platform = EmbeddedPlatform(
        args.data_dir,
        services=args.services,
        fresh=args.fresh,
        broker_port=args.broker_port,
        broker_storage=args.broker_storage,
        postgres_port=args.postgres_port,
        echo=sys.stdout if args.echo else None,
        ready_timeout_s=args.ready_timeout,
    )
    print(f"starting Vitrine in {platform.data_dir} ...", flush=True)
    try:
        await platform.astart()
    except asyncio.CancelledError:
        print("start interrupted; everything stopped", file=sys.stderr)
        return 0
    except Exception as error:
        print(f"start failed: {error}", file=sys.stderr)
        return 1
    running = True
    print(_table(platform), flush=True)

    reported: set[str] = set()
    try:
        while not stop.is_set():
            # Say so when a service dies; nobody restarts it, so the user should know.
            for name, service in platform.services.items():
                if not service.running and name not in reported:
                    reported.add(name)
                    print(
                        f"service {name} exited with code {service.returncode}; "
                        f"see {service.log_path}",
                        file=sys.stderr,
                        flush=True,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await platform.astop()
    print("stopped", flush=True)
    return 0


async def _topics(args: argparse.Namespace) -> int:
    from vitrine_runtime.topic_admin import ensure_topics
    from vitrine_schemas.topics import TOPICS

    if not args.bootstrap_servers:
        print("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap-servers", file=sys.stderr)
        return 2
    try:
        created = await ensure_topics(
            args.bootstrap_servers,
            TOPICS,
            timeout_s=args.timeout,
            replication_factor=args.replication_factor,
        )
    except Exception as error:
        print(f"topics failed: {error}", file=sys.stderr)
        return 1
    for topic in TOPICS:
        state = "created" if topic.name in created else "exists"
        print(f"  {topic.name:<18}{topic.partitions:>3} partitions  {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # group joins, metadata
    if args.command == "up":
        return asyncio.run(_up(args))
    if args.command == "dlq":
        return run_dlq(args)
    if args.command == "demo":
        from vitrine_stack.demo import main as demo_main

        return demo_main(args.data_dir)
    if args.command == "eval":
        from vitrine_stack.evaluation import run_eval

        if args.calibrate and args.split == "test":
            print("calibrate on the validation split (--split val), never on test", file=sys.stderr)
            return 2
        dataset = args.dataset or str(DEFAULT_DATA_DIR / "shopbench" / f"seed-{args.seed}-full")
        return asyncio.run(
            run_eval(
                Path(args.data_dir),
                Path(dataset),
                args.split,
                args.calibrate,
                args.seed,
                args.pool_with,
            )
        )
    return asyncio.run(_topics(args))
