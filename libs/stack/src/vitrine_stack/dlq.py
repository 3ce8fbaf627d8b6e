"""Dead letters: list, inspect and replay what a service parked in `dlq.<service>`.

    python -m vitrine_stack dlq list commission
    python -m vitrine_stack dlq show commission 17
    python -m vitrine_stack dlq replay commission --offset 17        # after the fix
    python -m vitrine_stack dlq replay commission --all --reason rejected

A replay sends the original bytes back to the topic they came from, with their original
key (so they land on their entity's partition, after whatever fixed them) and headers,
less the `dlq-*` ones, plus `replayed-from` (`dlq.<service>:<partition>:<offset>`).
Consumers deduplicate on the event id, so replaying a message twice applies it once.

What was replayed is remembered in the dead-letter topic itself: after its replays are
acknowledged, the tool appends a marker record (header `dlq-marker: replayed`, the
replayed offsets in its body). `list` shows them as replayed and `replay --all` skips
them, so it never resends the same messages forever; `--force` replays again anyway.
Nothing else reads the dead-letter topics, so markers reach no service. A crash between
the replay and its marker only means the next `--all` sends those messages again, which
the consumers' dedup absorbs.

The broker: `--bootstrap-servers`, else KAFKA_BOOTSTRAP_SERVERS, else the running embedded
platform's `<data dir>/platform.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from vitrine_schemas.topics import CONSUMING_SERVICES, dead_letter_topic

__all__ = [
    "DeadLetterRecord",
    "DeadLetterTopic",
    "ReplayReport",
    "add_dlq_parser",
    "read_dead_letters",
    "replay",
    "run_dlq",
]

MARKER_HEADER = "dlq-marker"
MARKER_KEY = b"dlq-replay-marker"
REPLAYED_FROM_HEADER = "replayed-from"
_DLQ_HEADER_PREFIX = "dlq-"


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One dead-lettered message, as its consumer parked it."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed_at: str | None = None  # when a marker says it was replayed

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        return self.headers.get("dlq-reason", "?")

    @property
    def detail(self) -> str:
        return self.headers.get("dlq-detail", "")

    @property
    def source_topic(self) -> str | None:
        return self.headers.get("dlq-source-topic")

    @property
    def source(self) -> str:
        return "{}/{}@{}".format(
            self.source_topic or "?",
            self.headers.get("dlq-source-partition", "?"),
            self.headers.get("dlq-source-offset", "?"),
        )

    @property
    def event_type(self) -> str:
        return self.headers.get("event-type", "?")

    def replay_headers(self, topic: str) -> list[tuple[str, bytes]]:
        kept = [
            (name, value.encode())
            for name, value in self.headers.items()
            if not name.startswith(_DLQ_HEADER_PREFIX)
        ]
        origin = f"{topic}:{self.partition}:{self.offset}"
        return [*kept, (REPLAYED_FROM_HEADER, origin.encode())]

    def as_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "event_type": self.event_type,
            "replayed_at": self.replayed_at,
            "headers": self.headers,
            "value": self.value.decode(errors="replace"),
        }


@dataclass(slots=True)
class DeadLetterTopic:
    topic: str
    records: list[DeadLetterRecord]
    markers: int = 0

    def find(self, partition: int, offset: int) -> DeadLetterRecord | None:
        return next(
            (r for r in self.records if (r.partition, r.offset) == (partition, offset)), None
        )


@dataclass(slots=True)
class ReplayReport:
    replayed: list[DeadLetterRecord] = field(default_factory=list)
    skipped_already_replayed: list[DeadLetterRecord] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)


def _headers(raw: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {name: bytes(value).decode(errors="replace") for name, value in (raw or ())}


async def read_dead_letters(bootstrap_servers: str, service: str) -> DeadLetterTopic:
    """Every record of `dlq.<service>` from the start, with what the markers say."""
    topic = dead_letter_topic(service)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"vitrine-dlq-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.force_metadata_update()  # type: ignore[no-untyped-call]
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        records: list[DeadLetterRecord] = []
        replayed: dict[tuple[int, int], str] = {}
        markers = 0
        if not assigned:
            return DeadLetterTopic(topic, records)
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in assigned])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for tp_records in batch.values():
                for record in tp_records:
                    if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                        continue
                    headers = _headers(record.headers)
                    if headers.get(MARKER_HEADER) == "replayed":
                        markers += 1
                        body = json.loads(record.value or b"{}")
                        for item in body.get("replayed", []):
                            replayed[(item["partition"], item["offset"])] = body.get("at", "")
                        continue
                    records.append(
                        DeadLetterRecord(
                            partition=record.partition,
                            offset=record.offset,
                            timestamp_ms=record.timestamp,
                            key=record.key,
                            value=record.value or b"",
                            headers=headers,
                        )
                    )
    finally:
        await consumer.stop()
    records = [
        DeadLetterRecord(
            r.partition,
            r.offset,
            r.timestamp_ms,
            r.key,
            r.value,
            r.headers,
            replayed.get((r.partition, r.offset)),
        )
        for r in sorted(records, key=lambda r: (r.partition, r.offset))
    ]
    return DeadLetterTopic(topic, records, markers)


def _parse_ref(ref: str) -> tuple[int, int]:
    """`17` (partition 0, the dead-letter topics have one) or `0:17`."""
    partition, _, offset = ref.rpartition(":")
    return int(partition or 0), int(offset)


def _select(
    topic: DeadLetterTopic,
    *,
    refs: Sequence[str],
    everything: bool,
    reason: str | None,
    force: bool,
    report: ReplayReport,
) -> list[DeadLetterRecord]:
    chosen: list[DeadLetterRecord] = []
    if refs:
        for ref in refs:
            record = topic.find(*_parse_ref(ref))
            if record is None:
                report.not_found.append(ref)
            else:
                chosen.append(record)
    elif everything:
        chosen = list(topic.records)
    if reason is not None:
        chosen = [r for r in chosen if r.reason == reason]
    selected = []
    for record in chosen:
        if record.replayed_at is not None and not force:
            report.skipped_already_replayed.append(record)
        else:
            selected.append(record)
    return selected


async def replay(
    bootstrap_servers: str,
    service: str,
    *,
    refs: Sequence[str] = (),
    everything: bool = False,
    reason: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> ReplayReport:
    """Send the chosen dead letters back to their source topics, then mark them."""
    if not refs and not everything:
        raise ValueError("choose messages: offsets, or everything (optionally by reason)")
    topic = await read_dead_letters(bootstrap_servers, service)
    report = ReplayReport()
    selected = _select(
        topic, refs=refs, everything=everything, reason=reason, force=force, report=report
    )
    unreplayable = [r for r in selected if not r.source_topic]
    if unreplayable:
        raise ValueError(f"no dlq-source-topic header on {[r.ref for r in unreplayable]}")
    if dry_run or not selected:
        report.replayed = selected
        return report
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(
                record.source_topic or "",
                record.value,
                key=record.key,
                headers=record.replay_headers(topic.topic),
            )
            for record in selected
        ]
        await asyncio.gather(*sends)  # every replay acknowledged before the marker
        now = datetime.now(UTC).isoformat()
        marker = {
            "at": now,
            "by": f"{getpass.getuser()}@{socket.gethostname()}",
            "replayed": [
                {"partition": r.partition, "offset": r.offset, "to": r.source_topic}
                for r in selected
            ],
        }
        await producer.send_and_wait(
            topic.topic,
            json.dumps(marker).encode(),
            key=MARKER_KEY,
            headers=[(MARKER_HEADER, b"replayed")],
        )
    finally:
        await producer.stop()
    report.replayed = selected
    return report


# --- the command line --------------------------------------------------------------------


def bootstrap_servers_from(explicit: str | None, data_dir: str) -> str:
    if explicit:
        return explicit
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    state = Path(data_dir) / "platform.json"
    if state.exists():
        return str(json.loads(state.read_text())["bootstrap_servers"])
    raise SystemExit(
        f"no broker: pass --bootstrap-servers, set KAFKA_BOOTSTRAP_SERVERS, or start the"
        f" platform (`make up`) so that {state} exists"
    )


def add_dlq_parser(commands: Any, default_data_dir: str) -> None:
    dlq = commands.add_parser(
        "dlq",
        help="list, show and replay dead-lettered messages of a service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dlq.add_argument(
        "--bootstrap-servers", help="default: $KAFKA_BOOTSTRAP_SERVERS or the platform"
    )
    dlq.add_argument("--data-dir", default=default_data_dir, help="platform.json's dir")
    verbs = dlq.add_subparsers(dest="dlq_command", required=True)
    services = sorted(CONSUMING_SERVICES)

    listing = verbs.add_parser("list", help="one line per dead letter")
    listing.add_argument("service", choices=services)
    listing.add_argument("--reason", help="only this dlq-reason")
    listing.add_argument("--pending", action="store_true", help="only those not replayed")
    listing.add_argument("--json", action="store_true", help="JSON lines")

    show = verbs.add_parser("show", help="one dead letter: headers and body")
    show.add_argument("service", choices=services)
    show.add_argument("offset", help="offset, or partition:offset")

    again = verbs.add_parser("replay", help="send dead letters back to their source topic")
    again.add_argument("service", choices=services)
    again.add_argument(
        "--offset", dest="refs", action="append", default=[], help="repeatable; or p:offset"
    )
    again.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    again.add_argument("--reason", help="only dead letters with this dlq-reason")
    again.add_argument("--force", action="store_true", help="replay even if replayed before")
    again.add_argument("--dry-run", action="store_true", help="say what would be replayed")


def _line(record: DeadLetterRecord) -> str:
    when = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    state = f"replayed {record.replayed_at[:19]}" if record.replayed_at else "pending"
    key = record.key.decode(errors="replace") if record.key is not None else "-"
    return (
        f"{record.ref:>8}  {when}  {record.reason:<26} {record.event_type:<20}"
        f" {record.source:<22} {key[:36]:<36}  {state}"
    )


async def _list(args: argparse.Namespace, servers: str) -> int:
    topic = await read_dead_letters(servers, args.service)
    records = [
        r
        for r in topic.records
        if (args.reason is None or r.reason == args.reason) and not (args.pending and r.replayed_at)
    ]
    if args.json:
        for record in records:
            print(json.dumps(record.as_json()))
        return 0
    print(f"{topic.topic}: {len(topic.records)} dead letters, {topic.markers} replay markers")
    if records:
        print(
            f"{'p:offset':>8}  {'failed (UTC)':<19}  {'reason':<26} {'event type':<20}"
            f" {'source topic/p@offset':<22} {'key':<36}  state"
        )
        for record in records:
            print(_line(record))
            if record.detail:
                print(f"{'':>10}{record.detail[:160]}")
    return 0


async def _show(args: argparse.Namespace, servers: str) -> int:
    topic = await read_dead_letters(servers, args.service)
    record = topic.find(*_parse_ref(args.offset))
    if record is None:
        print(f"no dead letter at {args.offset} in {topic.topic}", file=sys.stderr)
        return 1
    state = f"replayed {record.replayed_at}" if record.replayed_at else "pending"
    print(f"{topic.topic} {record.ref}  ({state})")
    print(f"key: {record.key.decode(errors='replace') if record.key is not None else None}")
    print("headers:")
    for name, value in record.headers.items():
        print(f"  {name}: {value}")
    print("body:")
    try:
        print(json.dumps(json.loads(record.value), indent=2))
    except ValueError:
        print(repr(record.value))
    return 0


async def _replay(args: argparse.Namespace, servers: str) -> int:
    if not args.refs and not args.all:
        print("say what to replay: --offset N (repeatable) or --all [--reason R]", file=sys.stderr)
        return 2
    report = await replay(
        servers,
        args.service,
        refs=args.refs,
        everything=args.all,
        reason=args.reason,
        force=args.force,
        dry_run=args.dry_run,
    )
    verb = "would replay" if args.dry_run else "replayed"
    for record in report.replayed:
        print(
            f"{verb} {record.ref} ({record.reason}, {record.event_type}) -> {record.source_topic}"
        )
    for record in report.skipped_already_replayed:
        print(f"skipped {record.ref}: replayed {record.replayed_at} (--force to send again)")
    for ref in report.not_found:
        print(f"not found: {ref}", file=sys.stderr)
    print(
        f"{len(report.replayed)} {verb}, {len(report.skipped_already_replayed)} already replayed,"
        f" {len(report.not_found)} not found"
    )
    return 1 if report.not_found else 0


def run_dlq(args: argparse.Namespace) -> int:
    servers = bootstrap_servers_from(args.bootstrap_servers, args.data_dir)
    command = {"list": _list, "show": _show, "replay": _replay}[args.dlq_command]
    return asyncio.run(command(args, servers))
